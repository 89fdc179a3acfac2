from django.conf import settings


def sluice(request) -> dict:
    return {
        "dataplane_driver": settings.SLUICE_DATAPLANE_DRIVER,
        "dataplane_is_simulated": settings.SLUICE_DATAPLANE_DRIVER == "simulated",
    }
