from django.urls import path

from . import views

urlpatterns = [
    path("greet/", views.greet),
    path("greet/safe/", views.greet_safe),
]
