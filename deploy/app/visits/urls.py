from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("visits", views.create_visit),
    path("visits/<int:visit_id>", views.get_visit),
]
