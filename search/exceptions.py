"""Errors of search: each says what went wrong and what to do.

`SearchUnavailable` and its kinds are what the selectors raise (no HTTP in them); the API turns each
into the `APIException` below with the same message.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class SearchUnavailable(Exception):
    """Search cannot rank right now; the message says what the shop's operator should do."""


class NoActiveModelError(SearchUnavailable):
    pass


class ModelFilesMissingError(SearchUnavailable):
    pass


class NoActiveModel(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        "Search is unavailable: no active model. Run `manage.py retrain` or `manage.py activate_model N`."
    )
    default_code = "no_active_model"


class ModelFilesMissing(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The active model's files are missing. Retrain it or activate another version."
    default_code = "model_files_missing"


class PhotoTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The photo is too large. Resize or compress it and try again."
    default_code = "photo_too_large"


class UnsupportedPhoto(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "This file is not a photo we can read. Upload a JPEG, PNG or WebP photo."
    default_code = "unsupported_photo"


class InvalidApiKey(APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "A valid API key is required in the X-Api-Key header."
    default_code = "invalid_api_key"


def search_unavailable_as_api_error(error: SearchUnavailable) -> APIException:
    if isinstance(error, ModelFilesMissingError):
        return ModelFilesMissing(str(error))
    return NoActiveModel(str(error) or None)
