"""A 60-second load run: staff, admins and providers of the largest firm, in the proportions
of a working day (mostly staff on their caseload and client pages, providers on their to-dos,
a few admins on the stuck report). Sessions come from `manage.py load_sessions`."""

import json
import os
import random
import re
from pathlib import Path

from locust import HttpUser, between, task

SESSIONS = json.loads(
    (Path(os.environ.get("VAR_DIR", "var")) / "bench" / "sessions.json").read_text()
)
CLIENT_LINK = re.compile(r'href="(/clients/[0-9a-f-]{36}/)"')


class Person(HttpUser):
    abstract = True
    role = ""
    wait_time = between(0.5, 2)

    def on_start(self):
        key = random.choice(SESSIONS["sessions"][self.role])
        self.client.headers["Cookie"] = f"{SESSIONS['cookie']}={key}"
        self.client.headers["X-Forwarded-Proto"] = "https"


class Staff(Person):
    role = "staff"
    weight = 6
    clients: list[str] = []

    @task(4)
    def caseload(self):
        response = self.client.get("/dashboard/", name="caseload")
        self.clients = CLIENT_LINK.findall(response.text)[:10] or self.clients

    @task(3)
    def client_page(self):
        if self.clients:
            self.client.get(random.choice(self.clients), name="client page")

    @task(1)
    def search(self):
        self.client.get("/dashboard/?q=a&due_within=14", name="caseload search")


class Provider(Person):
    role = "client"
    weight = 3

    @task
    def todos(self):
        self.client.get("/dashboard/", name="provider to-dos")


class Admin(Person):
    role = "admin"
    weight = 1

    @task(3)
    def report(self):
        self.client.get("/work/reports/stuck/", name="stuck report")

    @task(1)
    def caseload(self):
        self.client.get("/dashboard/", name="caseload (admin)")
