// Firm settings: as a day list is typed, its sentence under the box follows it
// ("On day 3, 7 and 14 of the 30-day connection request clock."). The server writes the same
// sentence on every load and checks the list on save; this only saves a round trip.
(function () {
  "use strict";
  var CLOCKS = {
    grant_reminder_days: ["grant_expiry_days", "connection request"],
    grant_staff_alert_days: ["grant_expiry_days", "connection request"],
    round_reminder_days: ["signature_deadline_days", "signature"],
    round_staff_alert_days: ["signature_deadline_days", "signature"]
  };
  var BEFORE = ["credential_reminder_days", "document_reminder_days"];

  function listed(days) {
    if (days.length === 1) return String(days[0]);
    return days.slice(0, -1).join(", ") + " and " + days[days.length - 1];
  }

  function parse(text) {
    var parts = text.split(",").map(function (p) { return p.trim(); }).filter(Boolean);
    if (!parts.every(function (p) { return /^[0-9]+$/.test(p); })) return null;
    var days = parts.map(Number).filter(function (d, i, all) { return all.indexOf(d) === i; });
    return days;
  }

  function sentence(name) {
    var input = document.getElementById("id_" + name);
    var days = parse(input.value);
    if (days === null) return "Write whole days separated by commas, e.g. 3, 7, 14.";
    if (days.length === 0) return "Write at least one day.";
    if (CLOCKS[name]) {
      var limit = Number(document.getElementById("id_" + CLOCKS[name][0]).value);
      days.sort(function (a, b) { return a - b; });
      var late = days.filter(function (d) { return d >= limit; });
      var text = "On day " + listed(days) + " of the " + limit + "-day " + CLOCKS[name][1] + " clock.";
      return late.length ? text + " Day " + listed(late) + " is past the deadline." : text;
    }
    days.sort(function (a, b) { return b - a; });
    return listed(days) + (days.length === 1 && days[0] === 1 ? " day" : " days") + " before.";
  }

  function refresh() {
    Object.keys(CLOCKS).concat(BEFORE).forEach(function (name) {
      var preview = document.getElementById("id_" + name + "_preview");
      if (preview && document.getElementById("id_" + name)) preview.textContent = sentence(name);
    });
  }

  document.addEventListener("input", function (event) {
    if (event.target.form && event.target.closest(".settings-section")) refresh();
  });
})();
