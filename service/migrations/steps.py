"""The schema steps, oldest first. Each names its columns with plain Peewee fields as they
were added (today's models move on); each is safe to run on a database that already has
part of it (a step interrupted before its commit leaves nothing on PostgreSQL and SQLite,
but an index or column made by hand is found, not made twice)."""
import peewee

from service.migrations import add_columns, complete_to_baseline, database, step, widen


@step(1, "release 0.2.0")
def release_0_2_0(migrator):
    complete_to_baseline()


@step(2, "exposers share folders: nfs and cifs")
def shares(migrator):
    widen("exposer", "mountpoint", 4096)
    add_columns(migrator, "exposer", {
        "path": peewee.CharField(max_length=4096, null=True),
        "comment": peewee.TextField(null=True),
        "clients": peewee.TextField(null=True),
        "export_id": peewee.IntegerField(null=True),
        "read_only": peewee.BooleanField(null=True),
        "browseable": peewee.BooleanField(null=True),
        "guest_ok": peewee.BooleanField(null=True),
        "valid_users": peewee.TextField(null=True),
        "write_list": peewee.TextField(null=True),
        "hosts_allow": peewee.TextField(null=True),
        "create_mask": peewee.CharField(max_length=4, null=True),
        "directory_mask": peewee.CharField(max_length=4, null=True),
        "inherit_permissions": peewee.BooleanField(null=True),
        "inherit_acls": peewee.BooleanField(null=True),
    })
    # a filesystem makes its mountpoint visible
    database.execute_sql("UPDATE exposer SET path = mountpoint WHERE type = 'gpfsnative' AND path IS NULL")


@step(3, "comment and extras on every item")
def notes(migrator):
    for table in ("exposer", "datastore", "profile", "template", "space", "snapshot"):
        add_columns(migrator, table, {"comment": peewee.TextField(null=True), "extras": peewee.TextField(null=True)})
