"""pixstor-mgmt: init | serve | worker | populate | usage | user | job | policy.  Also `adminctl populate now`.

Exit codes: 0 ok, 2 usage, 1 failure with a one-line reason on stderr.
"""
import argparse
import getpass
import logging
import os
import secrets
import sys
import time

from service import config, context, db

log = logging.getLogger("service.cli")


class Failure(Exception):
    """A one-line reason to exit 1."""


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_usage(sys.stderr)
        return 2
    try:
        settings = config.load(args.config)
        _logging(settings)
        context.setup(settings)
        return args.run(settings, args) or 0
    except (Failure, config.ConfigError) as exc:
        print(f"pixstor-mgmt: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:   # a reason, not a traceback, for the operator
        log.debug("command failed", exc_info=True)
        print(f"pixstor-mgmt: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1


def adminctl(argv=None):
    """PixStor's `adminctl populate now`, for admins who know that spelling."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["populate", "now"]:
        return main(["populate"] + argv[2:])
    print("usage: adminctl populate now [--config FILE]", file=sys.stderr)
    return 2


def _parser():
    parser = argparse.ArgumentParser(prog="pixstor-mgmt", description="PixStor Management REST API service")
    parser.add_argument("--config", help="TOML config file (default: $PIXSTOR_CONFIG, else ./var)")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name, run, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(run=run)
        p.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    command("init", cmd_init, "create or migrate the tables, the queue, populate, the admin user (idempotent)")
    command("migrate", cmd_migrate, "bring the database's schema to this release's (service/migrations)")
    serve = command("serve", cmd_serve, "serve the API (with a worker unless --no-worker)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-worker", action="store_true", help="do not run jobs in this process")
    command("worker", cmd_worker, "run storage jobs from the queue")
    command("populate", cmd_populate, "record the filesystems, pools and default profiles storage has")

    user = command("user", None, "manage users")
    users = user.add_subparsers(metavar="ACTION")
    add = users.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=_roles())
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=cmd_user_add)
    users.add_parser("list", help="list users").set_defaults(run=cmd_user_list)
    delete = users.add_parser("del", help="delete a user")
    delete.add_argument("name")
    delete.set_defaults(run=cmd_user_del)
    passwd = users.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(run=cmd_user_passwd)

    command("usage", cmd_usage, "measure the bytes used by every ACTIVE space (run it from cron or a timer)")
    job = command("job", None, "storage jobs")
    jobs = job.add_subparsers(metavar="ACTION")
    rerun = jobs.add_parser("rerun", help="queue a job that failed or was cut off again (job bodies are retry-safe)")
    rerun.add_argument("job_id")
    rerun.set_defaults(run=cmd_job_rerun)

    ilm = command("ilm", None, "information lifecycle: the ILM steps of profiles")
    ilms = ilm.add_subparsers(metavar="ACTION")
    ilm_run = ilms.add_parser("run", help="apply the ILM steps (gpfs: mmapplypolicy); --dry-run reports what they "
                                          "would move or delete, on every driver")
    ilm_run.add_argument("--dry-run", action="store_true", help="report, change nothing")
    ilm_run.set_defaults(run=cmd_ilm_run)

    policy = command("policy", None, "placement policy (gpfs)")
    policies = policy.add_subparsers(metavar="ACTION")
    install = policies.add_parser("install", help="install the default placement rules of every pool")
    install.add_argument("which", choices=["default"])
    install.set_defaults(run=cmd_policy_install)
    return parser


def _roles():
    from service.api.auth import ROLES
    return sorted(ROLES)


def _logging(settings):
    level = getattr(logging, settings.log.level.upper(), None)
    if not isinstance(level, int):
        raise config.ConfigError(f"config: log.level: unknown level {settings.log.level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    # what no format here shows, not gathered for every record (every request logs a line):
    # the caller's file and line, thread and process (logging HOWTO, "Optimization")
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def _open(settings, statement_timeout=None, check=True):
    """The database, refused (one line saying what to run) unless its schema is this release's."""
    from service import migrations
    db.open_database(settings.database.url, statement_timeout)
    if check:
        try:
            migrations.check()
        except migrations.SchemaMismatch as exc:
            raise Failure(str(exc)) from None


def cmd_migrate(settings, args):
    from service import migrations
    _open(settings, check=False)
    if not db.create_tables(say=print):
        with db.database.connection_context():
            print(f"the database is at schema version {migrations.applied()}: nothing to do")


# Commands ------------------------------------------------------------------

def cmd_init(settings, args):
    from service import tasks
    from service.models import User

    os.makedirs(settings.server.state_dir, mode=db.PRIVATE_FOLDER, exist_ok=True)
    for line in db.fix_modes(_private_paths(settings)):
        print(f"fixed the mode of {line} (it holds secrets)")
    os.makedirs(settings.storage.template_store, exist_ok=True)
    if settings.storage.driver == "posix":   # the demo filesystem is a folder
        for fs in settings.storage.filesystems:
            os.makedirs(fs.mountpoint, exist_ok=True)
    _open(settings, check=False)
    db.create_tables(say=print)
    tasks.configure(settings)
    _populate(settings)
    with db.database.connection_context():
        if not User.select().where(User.role == "admin").exists():
            password = secrets.token_urlsafe(12)
            _save_user("admin", "admin", password)
            secret = os.path.join(settings.server.state_dir, "admin-password")
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            print(f"created user admin with password {password} (also in {secret}, mode 0600)")
    print("initialised", settings.source or settings.base)


def _private_paths(settings):
    """The state folder and the files holding password and token hashes or the queue."""
    files = [db.sqlite_path(settings.database.url), db.sqlite_path(settings.queue.url),
             os.path.join(settings.server.state_dir, "admin-password")]
    files = [f for f in files if f]
    return [settings.server.state_dir] + [f + suffix for f in files for suffix in ("", "-wal", "-shm")]


def cmd_populate(settings, args):
    # a set-up command, like init: it makes (or migrates) the tables it fills
    _open(settings, check=False)
    db.create_tables(say=print)
    _populate(settings)


def _populate(settings):
    from service.populate import populate
    with db.database.connection_context():
        for line in populate(context.driver(), settings):
            print(line)


def cmd_serve(settings, args):
    from service import server, tasks
    from service.api.app import make_app
    from service.tasks.runner import install_log_capture, start_sweeper

    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    _open(settings, statement_timeout=settings.server.query_budget)   # a bound per statement on PostgreSQL
    tasks.configure(settings)
    app = make_app(settings)
    if settings.server.access_log:
        app = AccessLog(app, settings.server.trusted_proxies)
    consumer = None
    if not args.no_worker:
        install_log_capture(settings.log.job_level)
        consumer = tasks.consumer(settings.queue.workers, embedded=True, grace=settings.server.grace)
        consumer.start()
        start_sweeper(tasks.submit, tasks.queued)
    if not consumer:
        log.info("no worker in this process: run `pixstor-mgmt worker`")
    stopped = [lambda: consumer.stop(graceful=True)] if consumer else []
    server.serve(app, host, port, settings.server.threads, settings.server.grace, stopped,
                 settings.server.max_body)


class AccessLog:
    """One line per request on stderr: client METHOD path?query status."""

    def __init__(self, app, trusted_proxies):
        from service.api.app import redacted
        from service.api.proxies import networks, view
        self.redacted, self.view = redacted, view      # imported once, not per request
        self.app = app
        self.trusted = networks(trusted_proxies)
        self.log = logging.getLogger("service.access")

    def __call__(self, environ, start_response):
        def logging_start_response(status, headers, exc_info=None):
            query = self.redacted(environ.get("QUERY_STRING", ""))
            self.log.info("%s %s %s%s %s", self.view(environ, self.trusted)[2], environ["REQUEST_METHOD"],
                          environ.get("PATH_INFO", ""), "?" + query if query else "", status.split()[0])
            return start_response(status, headers, exc_info)
        return self.app(environ, logging_start_response)


def cmd_worker(settings, args):
    from service import tasks
    from service.tasks.runner import install_log_capture, start_sweeper

    _open(settings)
    tasks.configure(settings)
    install_log_capture(settings.log.job_level)
    start_sweeper(tasks.submit, tasks.queued)
    tasks.consumer(settings.queue.workers, grace=settings.server.grace).run()


def _read_password(from_stdin):
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise Failure("passwords differ")
    if len(password) < 8:
        raise Failure("password must have at least 8 characters")
    return password


def _save_user(name, role, password):
    from service.api.auth import hash_password
    from service.models import User
    User.create(name=name, role=role, password_hash=hash_password(password))


def cmd_user_add(settings, args):
    from service.models import User
    _open(settings)
    with db.database.connection_context():
        if User.get_or_none(User.name == args.name):
            raise Failure(f"user {args.name} exists")
        for check in User.name.validators:
            try:
                check(args.name)
            except ValueError as exc:
                raise Failure(f"user name {args.name!r}: {exc}") from None
        _save_user(args.name, args.role, _read_password(args.password_stdin))
    print(f"added user {args.name} with role {args.role}")


def cmd_user_list(settings, args):
    from service.models import User
    _open(settings)
    with db.database.connection_context():
        for user in User.select().order_by(User.name):
            print(f"{user.name}\t{user.role}")


def _existing_user(name):
    from service.models import User
    user = User.get_or_none(User.name == name)
    if user is None:
        raise Failure(f"no user {name}")
    return user


def cmd_user_del(settings, args):
    _open(settings)
    with db.database.connection_context():
        _existing_user(args.name).delete_instance(recursive=True)
    print(f"deleted user {args.name}")


def cmd_user_passwd(settings, args):
    from service.api.auth import hash_password
    from service.models import Token
    _open(settings)
    with db.database.connection_context():
        user = _existing_user(args.name)
        user.password_hash = hash_password(_read_password(args.password_stdin))
        user.save()
        # a new password ends the sessions of the old one
        Token.delete().where(Token.user == user).execute()
    print(f"changed the password of {args.name}")


def cmd_usage(settings, args):
    from service.models import Space
    from service.storage import StorageError
    from service.tasks.spaces import placement
    _open(settings)
    failed = 0
    with db.database.connection_context():
        for space in Space.select().where(Space.status == "ACTIVE", Space.fileset.is_null(False)):
            fs, _, _ = placement(space)
            try:
                used = context.driver().usage(fs, space.fileset)
            except StorageError as exc:
                failed += 1
                print(f"{space.name}: {exc}", file=sys.stderr)
                continue
            # a plain UPDATE of one column: a concurrent job's own save is not overwritten
            Space.update(used=used).where(Space.id == space.id).execute()
            print(f"{space.fileset}\t{used}")
    if failed:
        raise Failure(f"{failed} space(s) could not be measured")


def cmd_job_rerun(settings, args):
    from service import tasks
    from service.models import Job
    from service.tasks.runner import rerun
    _open(settings)
    tasks.configure(settings)
    with db.database.connection_context():
        refused = rerun(args.job_id, by=f"cli:{getpass.getuser()}")
        if refused:
            raise Failure(refused)
        job = Job.get_by_id(args.job_id)
        tasks.submit(job)
    print(f"queued job {job.id} ({job.action} /{job.resource_type}/{job.resource_id}) again")


def cmd_ilm_run(settings, args):
    from service import ilm
    from service.models import Profile, Space
    from service.tasks.profiles import profile_rules
    _open(settings)
    driver = context.driver()
    if not driver.has_pools and not args.dry_run:
        raise Failure(f"the {driver.name} driver has no pools to migrate between: nothing can move; "
                      "`ilm run --dry-run` reports what the steps would match")
    with db.database.connection_context():
        for fs in driver.discover():
            rules = profile_rules(fs.name)
            if driver.has_pools:
                print(driver.run_ilm(fs, rules, args.dry_run))
                continue
            profiles = [(entry.name, entry.steps, [s.path for s in Space.select(Space.path).join(Profile).where(
                Profile.name == entry.name, Space.path.is_null(False)).order_by(Space.name)]) for entry in rules
                if entry.steps]
            for line in ilm.report(fs.mountpoint, profiles, time.time()) or ["no ILM steps apply to any space"]:
                print(f"{fs.name}: {line}")


def cmd_policy_install(settings, args):
    driver = context.driver()
    if not hasattr(driver, "install_default_policy"):
        raise Failure(f"the {settings.storage.driver} driver places data without a policy; nothing to install")
    for fs in driver.discover():
        added = driver.install_default_policy(fs)
        for pool in added:
            print(f"{fs.name}: added rule '{pool}-placement' SET POOL '{pool}' WHERE FILESET_NAME LIKE '{pool}-%'")
        if not added:
            print(f"{fs.name}: every pool has its placement rule")


if __name__ == "__main__":
    sys.exit(main())
