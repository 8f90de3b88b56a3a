"""The schema steps, oldest first. Each names its columns with plain Peewee fields as they
were added (today's models move on); each is safe to run on a database that already has
part of it (a step interrupted before its commit leaves nothing on PostgreSQL and SQLite,
but an index or column made by hand is found, not made twice)."""
import peewee
from playhouse.migrate import migrate

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


@step(4, "indexes for the lists' default order and the spaces' overlap check")
def list_indexes(migrator):
    present = {i.name for table in ("exposer", "datastore", "profile", "template", "space", "snapshot")
               for i in database.get_indexes(table)}
    wanted = [(table, ("created", "id")) for table in ("exposer", "datastore", "profile", "template", "space",
                                                       "snapshot")] + [("space", ("relativepath",))]
    operations = [migrator.add_index(table, columns, False) for table, columns in wanted
                  if "_".join((table, *columns)) not in present]
    if operations:
        migrate(*operations)


@step(5, "ILM steps of profiles")
def ilm_steps(migrator):
    from service.models import Datastore, Profile

    class IlmStep(peewee.Model):     # the table as this step made it
        id = peewee.CharField(primary_key=True, max_length=36)
        status = peewee.CharField(index=True)
        status_message = peewee.TextField(null=True)
        created = peewee.DateTimeField()
        updated = peewee.DateTimeField()
        comment = peewee.TextField(null=True)
        extras = peewee.TextField(null=True)
        name = peewee.CharField()
        profile = peewee.ForeignKeyField(Profile, on_delete="CASCADE")
        order = peewee.IntegerField(column_name="position")
        action = peewee.CharField()
        target = peewee.ForeignKeyField(Datastore, null=True)
        access_days = peewee.IntegerField(null=True)
        modification_days = peewee.IntegerField(null=True)
        min_size = peewee.BigIntegerField(null=True)
        max_size = peewee.BigIntegerField(null=True)
        name_patterns = peewee.TextField(null=True)
        threshold_high = peewee.IntegerField(null=True)
        threshold_low = peewee.IntegerField(null=True)

        class Meta:
            database = database
            table_name = "ilmstep"
            indexes = ((("profile", "name"), True), (("profile", "order"), True), (("created", "id"), False))

    IlmStep.create_table(safe=True)


@step(6, "snapshots expire; the scheduler's lease")
def snapshot_expiry(migrator):
    add_columns(migrator, "snapshot", {"expires": peewee.DateTimeField(null=True)})
    if "snapshot_expires" not in {i.name for i in database.get_indexes("snapshot")}:
        migrate(migrator.add_index("snapshot", ("expires",), False))

    class Lease(peewee.Model):      # the table as this step made it
        name = peewee.CharField(primary_key=True, max_length=100)
        holder = peewee.CharField(max_length=300)
        until = peewee.DateTimeField()

        class Meta:
            database = database
            table_name = "lease"

    Lease.create_table(safe=True)


@step(7, "snapshot policies")
def snapshot_policies(migrator):
    from service.models import Space

    def table(name, columns, indexes=(), model_name=None):     # a table as this step made it
        meta = type("Meta", (), {"database": database, "table_name": name, "indexes": indexes})
        # indexes are named after the model (the through model's: SpaceSnapshotPolicyThrough)
        model = type(model_name or name, (peewee.Model,), {**columns, "Meta": meta})
        model.create_table(safe=True)
        return model

    policy = table("snapshotpolicy", {
        "id": peewee.CharField(primary_key=True, max_length=36),
        "status": peewee.CharField(index=True),
        "status_message": peewee.TextField(null=True),
        "created": peewee.DateTimeField(),
        "updated": peewee.DateTimeField(),
        "comment": peewee.TextField(null=True),
        "extras": peewee.TextField(null=True),
        "name": peewee.CharField(unique=True),
        "schedule": peewee.CharField(),
        "prefix": peewee.CharField(max_length=200),
        "retain_count": peewee.IntegerField(null=True),
        "retain_duration": peewee.CharField(null=True),
    }, ((("created", "id"), False),))
    table("space_snapshotpolicy_through", {
        "space": peewee.ForeignKeyField(Space),
        "snapshotpolicy": peewee.ForeignKeyField(policy),
    }, ((("space", "snapshotpolicy"), True),), "SpaceSnapshotPolicyThrough")
    table("policyrun", {
        "policy": peewee.ForeignKeyField(policy, on_delete="CASCADE"),
        "space": peewee.ForeignKeyField(Space, on_delete="CASCADE"),
        "last_slot": peewee.DateTimeField(),
    }, ((("policy", "space"), True),))
    snapshot = type("snapshot", (peewee.Model,), {
        "policy": peewee.ForeignKeyField(policy, null=True, on_delete="SET NULL"),
        "Meta": type("Meta", (), {"database": database, "table_name": "snapshot"})})
    add_columns(migrator, "snapshot", {"policy_id": snapshot._meta.fields["policy"]})


@step(8, "a space may start from a snapshot")
def space_source_snapshot(migrator):
    # no database constraint (as the model's _deferred field): a space and its snapshots name each other
    add_columns(migrator, "space", {"source_snapshot_id": peewee.CharField(max_length=36, null=True)})
    if "space_source_snapshot_id" not in {i.name for i in database.get_indexes("space")}:
        migrate(migrator.add_index("space", ("source_snapshot_id",), False))


@step(9, "spaces secured to a group: owner, group, permissions, acl")
def space_security(migrator):
    # spaces made before keep NULL permissions: their folders' modes stay as they are until a PATCH
    add_columns(migrator, "space", {
        "owner": peewee.CharField(null=True),
        "group": peewee.CharField(null=True),
        "permissions": peewee.CharField(max_length=4, null=True),
        "acl": peewee.TextField(null=True),
    })
