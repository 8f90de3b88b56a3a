"""Profiles (where a space's new files go) and their ILM steps (what happens to files later).

Admins create and change them; each change is a job that makes the filesystem's policy say
so (service/tasks/profiles.py). A profile that spaces use is never deleted; a new placement
applies to new files only (the job's message says so).
"""
from service import ilm
from service.api.cj import ApiError, invalid
from service.api.views import View
from service.db import lock
from service.models import IlmStep, Space

USER_NOTES = ("comment", "extras")


class ProfileView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        if values["datastore"].status != "ACTIVE":
            raise invalid({"datastore": f"datastore {values['datastore'].name} is {values['datastore'].status}"})

    def check_update(self, item, values):
        datastore = values.get("datastore")
        if datastore is None or datastore.id == item.datastore.id:
            if "datastore" in values and datastore is None:
                raise invalid({"datastore": "required field"})
            return False
        spaces = list(item.spaces)
        if spaces and datastore.filesystem != item.datastore.filesystem:
            raise invalid({"datastore": f"must be a datastore on filesystem {item.datastore.filesystem}, where the "
                                        f"profile's spaces are ({', '.join(sorted(s.name for s in spaces)[:5])})"})
        for step in item.ilmsteps:
            if step.action != "migrate":
                continue
            if step.target_id == datastore.id:
                raise invalid({"datastore": f"is where its migrate step {step.name} sends files: change or delete "
                                            "that step first"})
            if step.target.filesystem != datastore.filesystem:
                raise invalid({"datastore": f"is on filesystem {datastore.filesystem}; its migrate step {step.name} "
                                            f"sends files to filesystem {step.target.filesystem}"})
        return True

    def check_delete(self, item, force):
        self._refuse_in_use(item)

    def guard(self, action, values, item):
        if action == "delete":
            # a space created with this profile meanwhile would lose its profile
            lock(f"pixstor: space placement on filesystem {item.datastore.filesystem}")
            self._refuse_in_use(item)

    @staticmethod
    def _refuse_in_use(item):
        users = list(Space.select(Space.id, Space.name).where(Space.profile == item.id).order_by(Space.name))
        if users:
            named = ", ".join(f"{s.name} (/spaces/{s.id})" for s in users[:10])
            more = f" and {len(users) - 10} more" if len(users) > 10 else ""
            raise ApiError(409, f"profile {item.name} is used by spaces {named}{more}: nothing was deleted; "
                                "delete those spaces first")


class IlmStepView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        self._check(values)

    def check_update(self, item, values):
        merged = {name: getattr(item, name) for name in self.writable}
        merged.update(values)
        self._check(merged)
        if "order" in values and values["order"] != item.order:
            self._refuse_taken(item.profile, values["order"], item.id)
        return any(name not in USER_NOTES and values[name] != getattr(item, name) for name in values)

    def guard(self, action, values, item):
        if action == "update" and "order" in values:
            # the position checked and claimed in one step (the unique index would fail the job)
            lock(f"pixstor: ILM step positions of profile {item.profile_id}")
            self._refuse_taken(item.profile, values["order"], item.id)

    @staticmethod
    def _refuse_taken(profile, order, own_id):
        holder = IlmStep.get_or_none(IlmStep.profile == profile.id, IlmStep.order == order, IlmStep.id != own_id)
        if holder is not None:
            raise ApiError(409, f"ilmsteps item with the same profile and order exists: /ilmsteps/{holder.id}",
                           {"order": "already in use"})

    @staticmethod
    def _check(values):
        """The rules a step's fields obey together; 422 naming each field that breaks one."""
        errors = {}
        profile, target = values["profile"], values.get("target")
        if values["action"] == "migrate":
            if target is None:
                errors["target"] = "required for a migrate step: the datastore files move to"
            elif target.filesystem != profile.datastore.filesystem:
                errors["target"] = (f"must be a datastore on filesystem {profile.datastore.filesystem}, "
                                    f"where profile {profile.name} places data")
            elif target.pool == profile.datastore.pool:
                errors["target"] = f"must be another pool than the profile's own ({target.pool})"
        else:
            for name in ("target", "threshold_high", "threshold_low"):
                if values.get(name) is not None:
                    errors[name] = "only a migrate step has one"
            if not any(values.get(name) is not None for name in ilm.CONDITIONS):
                errors["action"] = ("a delete step needs at least one condition (" + ", ".join(ilm.CONDITIONS)
                                    + "): it would delete every file")
        high, low = values.get("threshold_high"), values.get("threshold_low")
        if (high is None) != (low is None):
            errors["threshold_low" if low is None else "threshold_high"] = "give threshold_high and threshold_low together"
        elif high is not None and low > high:
            errors["threshold_low"] = f"must not be above threshold_high ({high})"
        small, big = values.get("min_size"), values.get("max_size")
        if small is not None and big is not None and small > big:
            errors["max_size"] = f"must not be below min_size ({small})"
        if errors:
            raise invalid(errors)
