"""Request bodies through DRF serializers: invalid input raises, and the problem+json handler
answers 400 with the errors per field."""

from rest_framework import serializers


def validated_data(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
