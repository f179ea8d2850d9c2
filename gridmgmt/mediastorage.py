"""Photos on S3-compatible object storage (MEDIA_S3_BUCKET set; local disk, MEDIA_ROOT, stays the default) —
so every application server sees every photo (README, "Scale-out").

The bucket is private. A photo's URL is still `/media/<name>`, answered by gridmgmt.media, which checks access
as for a local file and then either redirects to a presigned URL valid MEDIA_S3_URL_SECONDS (default 60 s;
the browser fetches the object from the storage directly) or, with MEDIA_S3_PROXY=true, streams the object
through the app (for storage that browsers cannot reach, e.g. an internal MinIO/Ceph).
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from storages.backends.s3 import S3Storage


class PhotoS3Storage(S3Storage):
    def url(self, name, parameters=None, expire=None, http_method=None):
        """The authorizing view's URL, never the bucket's: access is decided per request (gridmgmt.media)."""
        return settings.MEDIA_URL + quote(name)

    def signed_url(self, name: str) -> str:
        """A presigned GET of the object, valid `querystring_expire` seconds (MEDIA_S3_URL_SECONDS)."""
        return super().url(name)
