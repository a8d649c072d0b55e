"""The services of one platform, wired together: what routes, dialects and job kinds call.

``runtime.Platform`` builds one over its store and job engine; a job kind reaches it as
``ctx.services`` (``JobContext[Services]``).
"""

from __future__ import annotations

from taskloom.blobs import BlobStore
from taskloom.config import Settings
from taskloom.jobs.engine import JobEngine
from taskloom.secrets_box import SecretBox
from taskloom.services.apps import AppService
from taskloom.services.auth import AuthService
from taskloom.services.buckets import BucketService
from taskloom.services.centroids import CentroidService
from taskloom.services.cluster_runs import ClusterRuns
from taskloom.services.crowd import CrowdService
from taskloom.services.datasets import DatasetService
from taskloom.services.documents import DocumentService
from taskloom.services.encoders import EncoderService
from taskloom.services.encoding import Encoding
from taskloom.services.features import FeatureService
from taskloom.services.models import ModelService
from taskloom.services.search import SearchService
from taskloom.store.engine import Store


class Services:
    """What routes, dialects and job kinds call."""

    def __init__(self, store: Store, settings: Settings, engine: JobEngine) -> None:
        self.settings = settings
        self.auth = AuthService(store, SecretBox.for_data_dir(settings.data_dir))
        self.datasets = DatasetService(store)
        self.encoders = EncoderService(store, settings)
        self.documents = DocumentService(store, max_batch=settings.max_batch_documents)
        self.centroids = CentroidService(store, self.documents)
        self.cluster_runs = ClusterRuns(self.centroids.clusterings)
        self.search = SearchService(store, self.documents, settings, self.encoders)
        self.blobs = BlobStore.from_settings(settings)
        self.jobs = engine
        self.encoding = Encoding(self.documents, self.datasets, self.encoders, self.blobs)
        self.crowd = CrowdService(store, settings, engine)
        self.buckets = BucketService(store, self.blobs)
        self.apps = AppService(store, self.blobs, self.auth)
        self.features = FeatureService(store, self.blobs, self.buckets)
        self.models = ModelService(store, self.blobs, self.buckets, self.features, engine)
