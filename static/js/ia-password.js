// Checks a candidate CMS I&A password against CMS's published rules, in the browser only.
// Nothing typed here is sent anywhere: the field has no name and sits outside any form.
(function () {
  "use strict";
  var rules = {
    length: function (p) { return p.length >= 8 && p.length <= 12; },
    letter: function (p) { return /[A-Za-z]/.test(p); },
    number: function (p) { return /[0-9]/.test(p); },
    special: function (p) { return /[^A-Za-z0-9]/.test(p); },
    start: function (p) { return p.length > 0 && !/^[0-9]/.test(p); }
  };
  function check(helper) {
    var input = helper.querySelector("[data-ia-password-input]");
    input.addEventListener("input", function () {
      var value = input.value;
      helper.querySelectorAll("[data-rule]").forEach(function (item) {
        var ok = value.length > 0 && rules[item.getAttribute("data-rule")](value);
        item.classList.toggle("rule-ok", ok);
        item.classList.toggle("rule-missing", value.length > 0 && !ok);
      });
    });
  }
  document.querySelectorAll("[data-ia-password-helper]").forEach(check);
})();
