"""Which view serves which collection: the read-only ones are plain Views of
their model; the writable ones come from their own small modules."""
from service.api.exposers import ExposerView
from service.api.policies import SnapshotPolicyView
from service.api.profiles import IlmStepView, ProfileView
from service.api.snapshots import SnapshotView
from service.api.spaces import SpaceView
from service.api.templates import TemplateView
from service.api.views import view_for
from service.models import Datastore, Exposer, IlmStep, Job, Profile, Snapshot, SnapshotPolicy, Space, Template

VIEWS = {view.collection: view for view in (
    SpaceView(Space), TemplateView(Template), SnapshotView(Snapshot), SnapshotPolicyView(SnapshotPolicy),
    ProfileView(Profile), IlmStepView(IlmStep), ExposerView(Exposer), view_for(Datastore), view_for(Job),
)}
