"""Snapshot policies (/snapshotpolicies/): a schedule, a name prefix and a retention; spaces list
the policies that apply to them (Space.snapshot_policies). The scheduler does the rest
(service.tasks.policies). Recording a policy is a job, as every create; a PATCH needs none."""
from service.api.cj import ApiError, invalid
from service.api.views import View
from service.models import Space, SpaceSnapshotPolicy


class SnapshotPolicyView(View):
    collection_methods = ("GET", "POST")
    item_methods = ("GET", "PATCH", "DELETE")

    def check_create(self, values, retried=None):
        if not values.get("retain_count") and not values.get("retain_duration"):
            raise invalid({"retain_count": "give retain_count, retain_duration or both: a policy without "
                                           "retention would keep every snapshot it takes"})

    def check_update(self, item, values):
        count = values.get("retain_count", item.retain_count)
        duration = values.get("retain_duration", item.retain_duration)
        if not count and not duration:
            raise invalid({"retain_count": "the policy would be left without retention"})
        return False

    def check_delete(self, item, force):
        if force:
            return
        spaces = list(Space.select(Space.id, Space.name).join(
            SpaceSnapshotPolicy, on=(SpaceSnapshotPolicy.space == Space.id)).where(
            SpaceSnapshotPolicy.snapshotpolicy == item.id).order_by(Space.name))
        if spaces:
            named = ", ".join(f"{s.name} (/spaces/{s.id})" for s in spaces)
            raise ApiError(409, f"policy {item.name} applies to spaces {named}: PATCH their snapshot_policies, "
                                "or delete with ?force=true to take it off them (its snapshots are kept)")
