from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("orgs/<str:org>/billing/", views.billing, name="account"),
    path("orgs/<str:org>/billing/payment-method/", views.payment_method, name="payment-method"),
]
