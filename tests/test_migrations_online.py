"""Every migration survives a live, large database (issue 12, finding 6).

Reads the SQL of every migration of the project's apps (`sqlmigrate`, on PostgreSQL) and
fails on what locks a big table for the length of its work: a plain CREATE INDEX on a table
the migration did not itself create (initial migrations build empty tables), and a data
migration (RunPython or RunSQL) inside one
transaction. Small tables (firms, memberships...) are not held to it.
"""

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader

from tests.conftest import skip_or_fail

APPS = ["portal", "clients", "workflows", "notifications"]
BIG_TABLES = {
    "clients_client",
    "clients_profile",
    "clients_delegate",
    "workflows_accessgrant",
    "workflows_enrollment",
    "workflows_signatureround",
    "workflows_developmentrequest",
    "workflows_openstep",
    "portal_auditevent",
    "notifications_notification",
}
# Data migrations in one transaction that touch only small tables, with the reason.
SMALL_DATA_MIGRATIONS = {
    ("portal", "0002_cadences_as_json_lists"): "rewrites the firms table: one row per tenant",
}

CREATE_INDEX = re.compile(r'CREATE (?:UNIQUE )?INDEX (?!CONCURRENTLY)"?(\w+)"? ON "(\w+)"')
CREATE_TABLE = re.compile(r'CREATE TABLE "(\w+)"')


def project_migrations():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted(
        (key, migration) for key, migration in loader.disk_migrations.items() if key[0] in APPS
    )


@pytest.mark.django_db
def test_no_migration_locks_a_big_table_for_its_whole_run():
    if connection.vendor != "postgresql":
        skip_or_fail("the SQL checked is PostgreSQL's")
    problems = []
    for (app, name), migration in project_migrations():
        if migration.initial:  # the tables are created empty, by these very migrations
            continue
        out = io.StringIO()
        call_command("sqlmigrate", app, name, stdout=out)
        sql = out.getvalue()
        created = set(CREATE_TABLE.findall(sql))
        for index, table in CREATE_INDEX.findall(sql):
            if table in BIG_TABLES and table not in created:
                problems.append(f"{app}.{name}: CREATE INDEX {index} on {table} is blocking")
        data_ops = [
            op
            for op in migration.operations
            if isinstance(op, migrations.RunPython | migrations.RunSQL)
        ]
        if data_ops and migration.atomic and (app, name) not in SMALL_DATA_MIGRATIONS:
            problems.append(f"{app}.{name}: a data migration inside one transaction")
    assert not problems, "\n".join(problems)
