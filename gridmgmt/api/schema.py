"""OpenAPI post-processing: every operation declares the errors it can answer, in the API's one error shape
(gridmgmt.api.exceptions), so a client — and the schemathesis run in the tests — knows every status it may
get. Operations that already describe a status keep their own description."""

from django.utils.translation import gettext_lazy as _

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "detail", "field"],
    "properties": {
        "code": {"type": "string", "description": "machine-readable reason, e.g. invalid, not_found, throttled"},
        "detail": {"type": "string", "description": "the message, in the request's language"},
        "field": {"type": "string", "nullable": True, "description": "the input the error is about, if any"},
        "errors": {"type": "object", "additionalProperties": True, "description": "every validation error"},
    },
    "additionalProperties": True,
}
ERRORS = {
    "400": _("无效输入"),
    "401": _("未登录或令牌无效"),
    "403": _("无权操作"),
    "404": _("不存在或不在权限范围内"),
    "413": _("请求过大"),
    "415": _("请求体类型不受支持 (JSON、表单或 multipart)"),
    "429": _("请求过于频繁 (Retry-After 给出等待秒数)"),
}
BODY_ONLY = {"413", "415"}  # only a request with a body can be too large, or of a type no parser reads


def errors_declare(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: add `Error` and the undeclared error responses."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                if status in BODY_ONLY and "requestBody" not in operation:
                    continue
                if status not in responses:
                    responses[status] = {"description": str(description), "content": content}
    return result


def geojson_lists_fix(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry. A paginated GeoJSON list (FeaturePagination) is a
    FeatureCollection whose `features` is the array of features; drf-gis declares `features` as the whole
    list serializer's schema (itself a FeatureCollection object). Point it at that object's array instead."""
    schemas = result.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        features = schema.get("properties", {}).get("features", {})
        ref = features.get("$ref", "") if isinstance(features, dict) else ""
        target = schemas.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/schemas/") else None
        inner = (target or {}).get("properties", {}).get("features")
        if isinstance(inner, dict) and inner.get("type") == "array" and "count" in schema.get("properties", {}):
            schema["properties"]["features"] = inner
        # A Feature's geometry may be null (RFC 7946 §3.2): a team that has not reported a position yet.
        geometry = schema.get("properties", {}).get("geometry")
        if isinstance(geometry, dict) and {"type", "properties"} <= set(schema.get("properties", {})):
            geometry["nullable"] = True
    return result
