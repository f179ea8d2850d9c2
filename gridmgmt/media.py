"""Photos (MEDIA_URL) through one authorizing view, whatever DEBUG says.

`GET /media/<path>`: the path must name a stored CasePhoto file, and access.photo_access must let the caller
see it (staff by scope, patrol by team, residents their own reports, anyone what the public view shows);
anything else — out of scope, unknown, malformed, `..`, missing on disk — is a 404. Then either nginx sends
the file (MEDIA_ACCEL_REDIRECT on: an empty answer with `X-Accel-Redirect: /protected-media/<path>`, an
`internal` location in deploy/nginx/gridmgmt.conf) or this process streams it (FileResponse: development,
tests, a server without nginx).

Photos on S3 (MEDIA_S3_BUCKET, gridmgmt/mediastorage.py): the same check, then a 302 to a presigned URL of
the object valid MEDIA_S3_URL_SECONDS (the redirect itself is not cached: `no-store`), or with
MEDIA_S3_PROXY=true the object streamed through this process.
"""

import mimetypes
import posixpath
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_safe

from gridmgmt import access

# Photos are stored under fresh random names and never rewritten, but who may see one can change (a case
# published, a user moved to another area): browsers may keep a copy for an hour, shared caches none.
CACHE_CONTROL = "private, max-age=3600"


def media_name(path: str) -> str:
    """The storage name of a requested path, or Http404 for anything that is not a plain relative path."""
    if (
        not path
        or "\x00" in path
        or "\\" in path
        or path.startswith("/")
        or posixpath.normpath(path) != path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise Http404("照片不存在 (photo not found)")
    return path


def media_file(name: str) -> Path:
    """The file under MEDIA_ROOT (resolved: a symlink out of MEDIA_ROOT is refused), or Http404."""
    root = Path(settings.MEDIA_ROOT).resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise Http404("照片不存在 (photo not found)")
    return target


@require_safe
def media_serve(request, path: str):
    name = media_name(path)
    access.photo_access(user=request.user, name=name)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.MEDIA_S3_BUCKET:
        return media_s3_serve(name, content_type=content_type)
    target = media_file(name)
    if settings.MEDIA_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = settings.MEDIA_ACCEL_PREFIX + quote(name)
    else:
        response = FileResponse(target.open("rb"), content_type=content_type)
    response["Cache-Control"] = CACHE_CONTROL
    return response


def media_s3_serve(name: str, *, content_type: str) -> HttpResponse:
    if not settings.MEDIA_S3_PROXY:
        response = HttpResponseRedirect(default_storage.signed_url(name))
        response["Cache-Control"] = "no-store"  # the signed URL expires: never reuse the redirect
        return response
    if not default_storage.exists(name):
        raise Http404("照片不存在 (photo not found)")
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = CACHE_CONTROL
    return response
