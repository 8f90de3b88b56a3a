"""The single source of truth: every resource, its fields, prompts and rules.

The C+J template, queries, validation, where/projection whitelist and the
OpenAPI document are derived from these declarations (see service/api).
A model is an API resource when its Meta names a `collection`.
"""
import datetime
import uuid

import peewee

from service.fields import (NAME, BigIntegerField, BooleanField, CharField, DateTimeField, ForeignKeyField,
                            IntegerField, JSONField, ManyToManyField, TextField, matches, not_negative, one_of,
                            percentage, positive)
from service import ilm, inputs, lifecycle, security
from service.shares import rules

database = peewee.DatabaseProxy()
STORAGE_STATUSES = ("NEW", "PENDING", "INPROGRESS", "ACTIVE", "ERRORED")
JOB_STATUSES = ("PENDING", "INPROGRESS", "COMPLETED", "ERRORED")
FINISHED_JOBS = ("COMPLETED", "ERRORED")
# Namespace for populated objects' stable ids: uuid5(namespace, "type:name").
POPULATE_NAMESPACE = uuid.UUID("6d3f1c2a-7a52-5a43-9a8e-2f0b7d1f5c11")


def new_id():
    return str(uuid.uuid4())


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def now_ms():
    """UTC now to the millisecond: a job's times (created, and the database's clock for the
    others) show how long it waited in the queue and ran."""
    moment = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def stable_id(kind, name):
    return str(uuid.uuid5(POPULATE_NAMESPACE, f"{kind}:{name}"))


class BaseModel(peewee.Model):
    id = CharField(primary_key=True, default=new_id, max_length=36,
                   help_text="unique identifier for the item", read_only=True)

    class Meta:
        database = database


class Resource(BaseModel):
    """Something clients see at /<collection>/<id>, with a status and Jobs."""
    status = CharField(default="ACTIVE", help_text="current status of the item", read_only=True,
                       index=True)
    status_message = TextField(null=True, help_text="why the item has its status", read_only=True)
    created = DateTimeField(default=now, help_text="when the item was created", read_only=True)
    updated = DateTimeField(default=now, help_text="when the item last changed", read_only=True)
    # the user's own notes: writable wherever the item is, not listed in C+J templates
    comment = TextField(null=True, help_text="comment", in_template=False)
    extras = JSONField(null=True, help_text="your own keys and values (query them as where extras.KEY)",
                       shape=inputs.extras, schema={"type": "object"}, keyed=True, in_template=False)

    def save(self, *args, **kwargs):
        self.updated = now()
        return super().save(*args, **kwargs)


# Filesystems (gpfsnative, discovered by populate) and the NFS and SMB shares of folders on them

EXPOSER_TYPES = ("gpfsnative", "nfs", "cifs")
_NAMES = {"type": "array", "items": {"type": "string"}}


class Exposer(Resource):
    name = CharField(help_text="exposer name", validators=[NAME],
                     immutable=True)
    type = CharField(help_text="specific type of the exposer",
                     validators=[one_of(*EXPOSER_TYPES)], immutable=True)
    mountpoint = CharField(help_text="path at which the exposer is mounted", read_only=True, max_length=4096)
    path = CharField(null=True, help_text="folder the exposer makes visible", immutable=True, max_length=4096,
                     shape=rules.share_path)
    clients = JSONField(null=True, help_text="NFS clients: a list of {host, options}", shape=rules.nfs_clients,
                        schema={"type": "array", "items": {"type": "object", "properties": {
                            "host": {"type": "string"}, "options": {"type": "array", "items": {"type": "string"}}}}})
    export_id = IntegerField(null=True, help_text="NFS export id (NFS-Ganesha Export_Id)", read_only=True)
    read_only = BooleanField(null=True, help_text="SMB: clients may only read")
    browseable = BooleanField(null=True, help_text="SMB: the share is listed to clients")
    guest_ok = BooleanField(null=True, help_text="SMB: clients may connect without a password")
    valid_users = JSONField(null=True, help_text="SMB: users and @groups allowed to connect", shape=rules.users,
                            schema=_NAMES)
    write_list = JSONField(null=True, help_text="SMB: users and @groups that may write even to a read-only share",
                           shape=rules.users, schema=_NAMES)
    hosts_allow = JSONField(null=True, help_text="SMB: addresses, networks or host names allowed to connect",
                            shape=rules.hosts, schema=_NAMES)
    create_mask = CharField(null=True, help_text="SMB: mode bits new files may have (octal)", max_length=4,
                            shape=rules.mask)
    directory_mask = CharField(null=True, help_text="SMB: mode bits new folders may have (octal)", max_length=4,
                               shape=rules.mask)
    inherit_permissions = BooleanField(null=True, help_text="SMB: new files and folders take their parent's mode")
    inherit_acls = BooleanField(null=True, help_text="SMB: new files and folders inherit their parent's ACLs")

    class Meta:
        collection = "exposers"
        indexes = ((("name", "type"), True), (("created", "id"), False))


class Datastore(Resource):
    name = CharField(help_text="datastore name", read_only=True)
    pool = CharField(help_text="storage pool holding the data", read_only=True)
    filesystem = CharField(help_text="filesystem the pool belongs to", read_only=True)

    class Meta:
        collection = "datastores"
        indexes = ((("name", "filesystem"), True), (("created", "id"), False))


class Profile(Resource):
    """Where a space's new files go (its datastore's pool) and what ILM steps do to them later."""
    name = CharField(unique=True, help_text="profile name", validators=[NAME], immutable=True)
    datastore = ForeignKeyField(Datastore, help_text="datastore the profile places data in", backref="profiles")

    class Meta:
        collection = "profiles"
        indexes = ((("created", "id"), False),)


ILM_ACTIONS = ("migrate", "delete")


class IlmStep(Resource):
    """One rule of a profile's information lifecycle: move files to another datastore, or delete
    them, when they match its conditions (a Storage Scale MIGRATE or DELETE rule)."""
    name = CharField(help_text="ILM step name", validators=[NAME], immutable=True)
    profile = ForeignKeyField(Profile, help_text="profile the step belongs to", immutable=True, backref="ilmsteps",
                              on_delete="CASCADE")
    order = IntegerField(help_text="position of the step in its profile (the first matching step wins)",
                         column_name="position", validators=[positive])
    action = CharField(help_text="what the step does: migrate or delete", validators=[one_of(*ILM_ACTIONS)])
    target = ForeignKeyField(Datastore, null=True, help_text="datastore files migrate to (migrate only)",
                             backref="ilm_targets")
    access_days = IntegerField(null=True, help_text="files not read for at least this many days",
                               validators=[not_negative])
    modification_days = IntegerField(null=True, help_text="files not changed for at least this many days",
                                     validators=[not_negative])
    min_size = BigIntegerField(null=True, help_text="files of at least this many bytes", validators=[not_negative])
    max_size = BigIntegerField(null=True, help_text="files of at most this many bytes", validators=[not_negative])
    name_patterns = JSONField(null=True, help_text="file names matching one of these patterns (* and ?)",
                              shape=ilm.name_patterns, schema={"type": "array", "items": {"type": "string"}})
    threshold_high = IntegerField(null=True, help_text="migrate only while the source pool is fuller than this "
                                                       "percentage (THRESHOLD high)", validators=[percentage])
    threshold_low = IntegerField(null=True, help_text="... and until it is down to this percentage (THRESHOLD low)",
                                 validators=[percentage])

    class Meta:
        collection = "ilmsteps"
        indexes = ((("profile", "name"), True), (("profile", "order"), True), (("created", "id"), False))


# Created by clients, backed by storage jobs -------------------------------

class Template(Resource):
    name = CharField(unique=True, help_text="template name", validators=[NAME], immutable=True)
    type = CharField(help_text="specific type of the template", validators=[one_of("filesystemtemplate")],
                     immutable=True)
    template_location = TextField(null=True, required=True, help_text="path to the template", immutable=True)
    store_path = TextField(null=True, hidden=True)   # where the builder put the copy

    class Meta:
        collection = "templates"
        indexes = ((("created", "id"), False),)


class SnapshotPolicy(Resource):
    """Snapshots of the spaces that list the policy, taken on its schedule, pruned by its retention
    (service.tasks.policies)."""
    name = CharField(unique=True, help_text="snapshot policy name", validators=[NAME], immutable=True)
    schedule = CharField(help_text="when snapshots are taken (UTC): cron fields minute hour day-of-month "
                                   "day-of-week, such as '0 * * *' hourly", shape=lifecycle.schedule)
    prefix = CharField(help_text="the policy's snapshots are named {prefix}-{UTC time of the slot}",
                       validators=[NAME], immutable=True, max_length=200)
    retain_count = IntegerField(null=True, help_text="keep this many of the newest snapshots per space",
                                validators=[positive])
    retain_duration = CharField(null=True, help_text="keep each snapshot this long from its slot (such as 7d "
                                                     "or 12h): its expires", shape=lifecycle.duration)

    class Meta:
        collection = "snapshotpolicies"
        indexes = ((("created", "id"), False),)


class Space(Resource):
    name = CharField(help_text="space name", validators=[NAME], immutable=True)
    relativepath = CharField(help_text="path of the space relative to its exposers", immutable=True,
                             max_length=4096)
    templates = ManyToManyField(Template, help_text="templates applied to the space", null=True,
                                immutable=True, backref="spaces")
    exposers = ManyToManyField(Exposer, help_text="exposers providing access to the space",
                               immutable=True, backref="spaces")
    profile = ForeignKeyField(Profile, help_text="profile applied to the space", immutable=True,
                              backref="spaces")
    size = BigIntegerField(help_text="hard limit on the size of the space in blocks", validators=[positive])
    fileset = CharField(null=True, help_text="fileset holding the space", read_only=True)
    path = CharField(null=True, help_text="path of the space on its filesystem", read_only=True,
                     max_length=4096)
    used = BigIntegerField(null=True, help_text="bytes used in the space, as last measured", read_only=True)
    snapshot_policies = ManyToManyField(SnapshotPolicy, help_text="snapshot policies that apply to the space",
                                        null=True, in_template=False, backref="spaces")
    # who may use it (service/security.py): applied to its folders by its jobs; not in C+J templates
    owner = CharField(null=True, help_text="user owning the space's folder (a name or a numeric id)",
                      shape=security.owner, in_template=False)
    group = CharField(null=True, help_text="group the space is secured to (a name or a numeric id)",
                      shape=security.group, in_template=False)
    permissions = CharField(null=True, default=security.DEFAULT_PERMISSIONS, max_length=4, shape=security.permissions,
                            help_text="mode of the space's folder, octal (2770: set-group-id, rwx for owner and group)",
                            in_template=False)
    acl = JSONField(null=True, help_text="POSIX ACL entries as getfacl writes them (default: ones are inherited)",
                    shape=security.acl, schema={"type": "array", "items": {"type": "string"}}, in_template=False)

    class Meta:
        collection = "spaces"
        # the list's default order (created, id); the overlap check's lookups by relativepath
        indexes = ((("name", "profile"), True), (("created", "id"), False), (("relativepath",), False))


class Snapshot(Resource):
    name = CharField(help_text="snapshot name", validators=[NAME], immutable=True)
    type = CharField(help_text="specific type of the snapshot",
                     validators=[one_of("gpfsspacesnapshot", "gpfsfilesystemsnapshot")], immutable=True)
    space = ForeignKeyField(Space, null=True, help_text="space the snapshot is of", immutable=True,
                            backref="snapshots", on_delete="CASCADE")
    exposer = ForeignKeyField(Exposer, null=True, help_text="filesystem (exposer) the snapshot is of",
                              immutable=True, backref="snapshots")
    path = CharField(null=True, help_text="path of the snapshot", read_only=True, max_length=4096)
    policy = ForeignKeyField(SnapshotPolicy, null=True, help_text="snapshot policy that took the snapshot",
                             read_only=True, backref="snapshots", on_delete="SET NULL")
    # the scheduler deletes the snapshot once this time (UTC) has come; none: kept until deleted
    expires = DateTimeField(null=True, index=True, shape=lifecycle.parse_timestamp, in_template=False,
                            help_text="when the snapshot is deleted (ISO 8601, UTC); on create, retain_for "
                                      "(such as 7d or 12h) sets it from now")

    class Meta:
        collection = "snapshots"
        # two indexes, as NULLs never collide: (name, space) for space snapshots,
        # (name, exposer) for filesystem snapshots
        indexes = ((("name", "space"), True), (("name", "exposer"), True), (("created", "id"), False))


# The snapshot a space started from, declared once Snapshot is (a space and its snapshots name
# each other): a column without a database constraint (_deferred), so either table can be made
# first; the snapshot's delete sets it NULL (service.tasks.snapshots).
Space._meta.add_field("source_snapshot", ForeignKeyField(
    Snapshot, null=True, _deferred=True, immutable=True, in_template=False, backref="copies",
    help_text="snapshot the space starts from, instead of templates (create only)"))

SpaceTemplate = Space.templates.through_model
SpaceExposer = Space.exposers.through_model
SpaceSnapshotPolicy = Space.snapshot_policies.through_model


class PolicyRun(peewee.Model):
    """The latest slot of a policy taken for a space: the scheduler's conditional UPDATE of it
    lets one look alone take a slot."""
    policy = peewee.ForeignKeyField(SnapshotPolicy, on_delete="CASCADE", backref="runs")
    space = peewee.ForeignKeyField(Space, on_delete="CASCADE", backref="policy_runs")
    last_slot = peewee.DateTimeField()

    class Meta:
        database = database
        indexes = ((("policy", "space"), True),)


class Job(BaseModel):
    status = CharField(default="PENDING", help_text="current status of the job", read_only=True, index=True)
    action = CharField(help_text="what the job does: create, update, delete or revert", read_only=True)
    resource_type = CharField(help_text="collection of the item the job works on", read_only=True)
    resource_id = CharField(help_text="id of the item the job works on", read_only=True)
    owner = CharField(null=True, index=True, read_only=True,
                      help_text="name of the user who asked for the job (system: the service itself)")
    created = DateTimeField(default=now_ms, help_text="when the job was submitted", read_only=True)
    queued = DateTimeField(null=True, read_only=True, help_text="when the job was last handed to the queue")
    queued_by = CharField(null=True, read_only=True,
                          help_text="who last handed the job to the queue: its owner, system:sweeper (a lost "
                                    "queue message or a silent worker) or cli:USER (job rerun)")
    started = DateTimeField(null=True, help_text="when the job started", read_only=True)
    finished = DateTimeField(null=True, help_text="when the job finished", read_only=True)
    heartbeat = DateTimeField(null=True, help_text="when the running job last reported", read_only=True)
    # the fencing token: each run that takes the job adds one, and writes only while it is the last
    attempt = IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")], read_only=True,
                           help_text="how many runs have taken the job; the last one alone may write")
    message = TextField(null=True, help_text="one-line outcome of the job", read_only=True)
    params = TextField(null=True, hidden=True)   # JSON: what the job was asked (e.g. force)
    stdout = TextField(default="", hidden=True)
    stderr = TextField(default="", hidden=True)

    class Meta:
        collection = "jobs"
        # the list's order (created, id; also read backwards), and an item's Jobs link in that order
        indexes = ((("created", "id"), False), (("resource_id", "created", "id"), False))


# Auth ---------------------------------------------------------------------

class User(BaseModel):
    name = CharField(unique=True, validators=[matches(r"[A-Za-z0-9_.@-]+", "invalid user name")])
    role = CharField()
    password_hash = CharField(max_length=255)
    created = DateTimeField(default=now)


class Token(BaseModel):
    token_hash = CharField(unique=True, max_length=64)
    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    expires = DateTimeField(index=True)


class LoginFailure(BaseModel):
    """Failed logins of one key ("user:NAME" or "address:IP") in the current window; kept in
    the database so that throttling holds across API processes."""
    key = CharField(unique=True, max_length=300)
    failures = IntegerField(default=0)
    first = DateTimeField(default=now)            # start of the counting window
    locked_until = DateTimeField(null=True)


class Lease(peewee.Model):
    """Work that one worker of several does at a time (the snapshot scheduler): the worker that
    holds the row until `until` (the database's clock) does it, and renews it as it goes."""
    name = peewee.CharField(primary_key=True, max_length=100)
    holder = peewee.CharField(max_length=300)
    until = peewee.DateTimeField()

    class Meta:
        database = database


RESOURCES = [Exposer, Datastore, Profile, IlmStep, Template, SnapshotPolicy, Space, Snapshot, Job]
TABLES = [Exposer, Datastore, Profile, IlmStep, Template, SnapshotPolicy, Space, SpaceTemplate, SpaceExposer,
          SpaceSnapshotPolicy, Snapshot, PolicyRun, Job, User, Token, LoginFailure, Lease]
BY_COLLECTION = {m._meta.collection: m for m in RESOURCES}
