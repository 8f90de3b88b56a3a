"""Profile and ILM step jobs: the filesystem's policy made to say what the profiles say.

On gpfs a profile's placement and its ILM steps are rules of the filesystem's policy
(service/storage/gpfs_policy.py); every change of a profile, of one of its steps, or of the
spaces of a profile that has rules installs the policy again — computed from the database
with the change applied, installed, and only then recorded, so a failed install leaves both
as they were. Drivers without pools record the change and install nothing.
"""
import logging
from types import SimpleNamespace

from service import context
from service.db import lock
from service.models import Datastore, IlmStep, Profile, Space
from service.storage.gpfs_policy import ProfileRules
from service.tasks.runner import check_fence, fenced_write, handles

log = logging.getLogger(__name__)


def _with(item, changes):
    """A read-only copy of `item` with `changes` applied (the state a job is about to record)."""
    copy = SimpleNamespace(**{name: getattr(item, name) for name in item._meta.fields})
    for name, value in (changes or {}).items():
        setattr(copy, name, value)
    return copy


def profile_rules(filesystem, changed=None, gone=None):
    """ProfileRules of the profiles placing data on `filesystem`, from the database with one
    pending change applied: `changed` an item and its new values, `gone` an item about to go."""
    changed_item, changes = changed or (None, None)
    found = []
    for profile in Profile.select().order_by(Profile.name):
        if gone is not None and isinstance(gone, Profile) and gone.id == profile.id:
            continue
        if isinstance(changed_item, Profile) and changed_item.id == profile.id:
            profile = _with(profile, changes)
        datastore = datastore_of(profile)
        if datastore.filesystem != filesystem:
            continue
        filesets = [s.fileset for s in Space.select(Space.fileset).where(
            Space.profile == profile.id, Space.fileset.is_null(False)).order_by(Space.fileset)]
        steps = []
        for step in IlmStep.select().where(IlmStep.profile == profile.id).order_by(IlmStep.order):
            if gone is not None and isinstance(gone, IlmStep) and gone.id == step.id:
                continue
            if isinstance(changed_item, IlmStep) and changed_item.id == step.id:
                step = _with(step, changes)
            steps.append(step)
        steps.sort(key=lambda s: s.order)
        for step in steps:
            target = datastore_of(step, "target") if step.action == "migrate" else None
            step.target_pool = target.pool if target else None
        moved = any(not f.startswith(f"{datastore.pool}-") for f in filesets)
        if steps or moved:     # else the {pool}-placement rules place its spaces already
            found.append(ProfileRules(profile.name, datastore.pool, filesets, steps))
    return found


def datastore_of(item, field="datastore"):
    """The Datastore an item (or a copy made by _with, whose changes hold ids) refers to."""
    value = getattr(item, field)
    return value if isinstance(value, Datastore) or value is None else Datastore.get_by_id(value)


def install(filesystem, changed=None, gone=None):
    """Install the policy `filesystem` needs now; one install per filesystem at a time."""
    fs = context.filesystem(filesystem)
    check_fence()
    with fenced_write():
        lock(f"pixstor: policy of filesystem {filesystem}")
        rules = profile_rules(filesystem, changed, gone)
        if context.driver().install_profiles(fs, rules):
            log.info("installed the policy of %s for %d profile(s) with rules", filesystem, len(rules))


def after_space_change(space):
    """A space made or gone: its profile's rules name its fileset, so install them again."""
    profile = space.profile
    has_rules = IlmStep.select().where(IlmStep.profile == profile.id).exists() or (
        space.fileset and not space.fileset.startswith(f"{profile.datastore.pool}-"))
    if has_rules:
        install(profile.datastore.filesystem)


def _filesystem_of(profile_or_step):
    profile = profile_or_step if isinstance(profile_or_step, Profile) else profile_or_step.profile
    return profile.datastore.filesystem


@handles("profiles", "create")
@handles("ilmsteps", "create")
def create_profile_or_step(item, params):
    install(_filesystem_of(item))


@handles("profiles", "update")
@handles("ilmsteps", "update")
def update_profile_or_step(item, params):
    model = type(item)
    install(_filesystem_of(item), changed=(item, params))
    with fenced_write():
        model.update(**params).where(model.id == item.id).execute()
    if isinstance(item, Profile) and "datastore" in params and params["datastore"] != item.__data__["datastore"]:
        old, new = item.datastore.pool, datastore_of(_with(item, params)).pool
        message = (f"placement of profile {item.name} changed from pool {old} to {new}: new files of its spaces "
                   f"go to {new}; files already written stay in {old} (an ILM migrate step moves them)")
        log.warning(message)
        return message
    return None


@handles("profiles", "delete")
@handles("ilmsteps", "delete")
def delete_profile_or_step(item, params):
    install(_filesystem_of(item), gone=item)
    with fenced_write():
        if isinstance(item, Profile):
            IlmStep.delete().where(IlmStep.profile == item.id).execute()
        item.delete_instance()
