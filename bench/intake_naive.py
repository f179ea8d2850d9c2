"""The naive baseline of `bench/intake.py`: a report written the way most Django projects would write it,
mounted only by the bench (`bench/intake_settings.py` → this URLconf, in front of the product's URLs).

A DRF `ModelSerializer` create (`ImageField` validation, a `SlugRelatedField` for the category), a separate
locate query that loads the whole cell, the code serial fetched on its own, `save()` per photo, and Pillow
decode + re-encode of every photo (upright, at most 2,560 px, quality 85 — what the product does to photos it
cannot keep as they are). The event is written by the product's `event_append`, so both paths leave the same
rows behind (case, photos, event, feed row).
"""

import io
import uuid

from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.urls import include, path
from django.utils import timezone
from PIL import Image, ImageOps
from rest_framework import generics, serializers

from geo.models import GridCell
from gridmgmt.events import event_append
from gridmgmt.models import Case, CaseEvent, CasePhoto, Category


class NaiveCaseSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(
        slug_field="code", queryset=Category.objects.filter(is_active=True, parent__isnull=False)
    )
    lon = serializers.FloatField(write_only=True, min_value=-180, max_value=180)
    lat = serializers.FloatField(write_only=True, min_value=-90, max_value=90)
    photos = serializers.ListField(child=serializers.ImageField(), write_only=True, required=False, max_length=9)

    class Meta:
        model = Case
        fields = [
            "id",
            "code",
            "category",
            "lon",
            "lat",
            "description",
            "address",
            "urgency",
            "source",
            "status",
            "reporter",
            "reporter_name",
            "reporter_phone",
            "external_id",
            "cell",
            "community",
            "street",
            "district",
            "responsibility_grid",
            "department",
            "reported_at",
            "photos",
        ]
        read_only_fields = [
            "id",
            "code",
            "source",
            "status",
            "reporter",
            "cell",
            "community",
            "street",
            "district",
            "responsibility_grid",
            "department",
            "reported_at",
        ]

    def validate(self, attrs):
        point = Point(attrs.pop("lon"), attrs.pop("lat"), srid=4326)
        cell = GridCell.objects.filter(geom__covers=point).order_by("code").first()
        if cell is None:
            raise serializers.ValidationError({"lon": "该位置不在服务范围内"})
        attrs.update(point=point, cell=cell)
        return attrs

    def create(self, validated_data):
        photos = validated_data.pop("photos", [])
        cell, category = validated_data["cell"], validated_data["category"]
        with connection.cursor() as cur:
            cur.execute("SELECT nextval('gridmgmt_case_code_seq')")
            serial = cur.fetchone()[0]
        with transaction.atomic():
            case = Case.objects.create(
                code=f"{timezone.localdate():%Y%m%d}{serial:07d}",
                community_id=cell.community_id,
                street_id=cell.street_id,
                district_id=cell.district_id,
                responsibility_grid_id=cell.responsibility_grid_id,
                department_id=category.default_department_id,
                urgency=validated_data.pop("urgency", None) or category.default_urgency,
                status=Case.Status.REPORTED,
                reported_at=timezone.now(),
                **validated_data,
            )
            stored = []
            for upload in photos:
                img = ImageOps.exif_transpose(Image.open(upload)).convert("RGB")
                img.thumbnail((2560, 2560))
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85)
                photo = CasePhoto(case=case, kind=CasePhoto.Kind.BEFORE, width=img.width, height=img.height)
                photo.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(out.getvalue()))  # one INSERT each
                stored.append(photo)
            event_append(
                case=case,
                type=CaseEvent.Type.REPORTED,
                actor=case.reporter,
                from_status="",
                to_status=Case.Status.REPORTED,
                at=case.reported_at,
                location=case.point,
                note=case.description[:200],
                data={"source": case.source},
                photos=stored,
            )
        return case


class NaiveCaseCreate(generics.CreateAPIView):
    serializer_class = NaiveCaseSerializer

    def perform_create(self, serializer):
        key = self.request.headers.get("Idempotency-Key") or None
        if key and Case.objects.filter(idempotency_key=key).exists():
            raise serializers.ValidationError({"idempotency_key": "该幂等键已被使用"})
        serializer.save(reporter=self.request.user, source=Case.Source.PATROL, idempotency_key=key)


urlpatterns = [
    path("bench/naive/cases/", NaiveCaseCreate.as_view()),
    path("", include("gridmgmt.urls")),
]
