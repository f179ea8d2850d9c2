"""Photo intake: verify, strip EXIF (location privacy), normalise orientation and size, store as JPEG."""

import io
import uuid

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from gridmgmt.errors import InvalidInput
from gridmgmt.models import Case, CasePhoto

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_EDGE = 2560
FORMATS = {"JPEG", "PNG", "WEBP", "MPO"}

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # decompression bombs fail instead of eating memory


def photo_prepare(*, upload) -> tuple[ContentFile, int, int]:
    """Validate one uploaded file and return a clean JPEG (no EXIF) with its size. Raises InvalidInput."""
    name = getattr(upload, "name", "photo")
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_BYTES:
        raise InvalidInput(_("照片 %(name)s 超过 10 MB") % {"name": name}, field="photos", code="photo_too_large")
    raw = upload.read()
    if len(raw) > MAX_BYTES:
        raise InvalidInput(_("照片 %(name)s 超过 10 MB") % {"name": name}, field="photos", code="photo_too_large")
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format
            probe.verify()
        if fmt not in FORMATS:
            raise InvalidInput(
                _("照片 %(name)s 格式不支持,请上传 JPEG/PNG/WebP") % {"name": name}, field="photos", code="photo_format"
            )
        img = Image.open(io.BytesIO(raw))
        img = ImageOps.exif_transpose(img)  # keep what the camera meant, then drop the EXIF itself
        img = img.convert("RGB")
        img.thumbnail((MAX_EDGE, MAX_EDGE))
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise InvalidInput(
            _("照片 %(name)s 无法识别或已损坏") % {"name": name}, field="photos", code="photo_invalid"
        ) from None
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, optimize=True)
    return ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.jpg"), img.width, img.height


def photos_prepare(*, uploads) -> list[tuple[ContentFile, int, int]]:
    """Validate all photos before anything is written, so a bad one refuses the whole request."""
    return [photo_prepare(upload=u) for u in uploads]


def photos_store(*, case: Case, prepared, kind: str) -> list[CasePhoto]:
    photos = []
    for content, width, height in prepared:
        photo = CasePhoto(case=case, kind=kind, width=width, height=height)
        photo.image.save(content.name, content, save=False)
        photo.save()
        photos.append(photo)
    return photos
