"""The naive baseline of `bench/intake.py`: a report written the way most Django projects would write it, in
its own server with its own settings (`bench/intake_naive_settings.py`: startproject + DRF defaults).

The recipe, and nothing added to it:
- Django's defaults: no connection pool, CONN_MAX_AGE = 0 (a new PostgreSQL connection per request), the
  startproject middleware; DRF's default settings (browsable API renderer, session + basic authentication:
  the bench client logs in once and sends its session cookie and CSRF token), `IsAuthenticated` on the view;
- a `generics.CreateAPIView` with a `ModelSerializer` create: the category as a `SlugRelatedField`, the
  photos as a `ListField` of DRF `ImageField`s (Django's image validation opens each photo with Pillow);
- the idempotency key checked with `.exists()`;
- locate with a plain ORM query, `GridCell.objects.filter(geom__contains=point).first()`, and the case
  code's serial fetched with its own `nextval`;
- in one `transaction.atomic()`: `Case.objects.create`, then per photo the common EXIF-stripping recipe
  (Pillow decode, `ImageOps.exif_transpose`, re-encode as JPEG quality 85) and `CasePhoto.objects.create`
  (`ImageField(upload_to=…)` writes the file, then one INSERT each), the event with a plain
  `CaseEvent.objects.create` and its photos with `event.photos.add(...)`;
- the response: the ModelSerializer's own representation of the case.

It writes the case, its photos and its event; unlike the product it writes no real-time feed row (the
product's feed row takes the feed's advisory lock, so this leaves the naive path less work, not more).
"""

import io
import uuid

from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from PIL import Image, ImageOps
from rest_framework import generics, permissions, serializers

from geo.models import GridCell
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
        cell = GridCell.objects.filter(geom__contains=point).first()
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
                out = io.BytesIO()
                img.save(out, "JPEG", quality=85)
                stored.append(
                    CasePhoto.objects.create(
                        case=case,
                        kind=CasePhoto.Kind.BEFORE,
                        image=ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.jpg"),
                        width=img.width,
                        height=img.height,
                    )
                )
            event = CaseEvent.objects.create(
                case=case,
                type=CaseEvent.Type.REPORTED,
                actor=case.reporter,
                actor_role=case.reporter.role,
                from_status="",
                to_status=Case.Status.REPORTED,
                at=case.reported_at,
                location=case.point,
                note=case.description[:200],
                data={"source": case.source},
                district_id_copy=case.district_id,
                street_id_copy=case.street_id,
                community_id_copy=case.community_id,
                department_id_copy=case.department_id,
            )
            if stored:
                event.photos.add(*stored)
        return case


class NaiveCaseCreate(generics.CreateAPIView):
    serializer_class = NaiveCaseSerializer
    permission_classes = [permissions.IsAuthenticated]

    def perform_create(self, serializer):
        key = self.request.headers.get("Idempotency-Key") or None
        if key and Case.objects.filter(idempotency_key=key).exists():
            raise serializers.ValidationError({"idempotency_key": "该幂等键已被使用"})
        serializer.save(reporter=self.request.user, source=Case.Source.PATROL, idempotency_key=key)


urlpatterns = [path("bench/naive/cases/", NaiveCaseCreate.as_view())]
