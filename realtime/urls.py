from django.urls import path

from realtime import docs_views, views

app_name = "realtime"

urlpatterns = [
    path("rooms/", views.RoomListView.as_view(), name="rooms"),
    path("rooms/<slug:slug>/messages/", views.RoomMessagesView.as_view(), name="room-messages"),
    path("rooms/<slug:slug>/members/", views.RoomMembersView.as_view(), name="room-members"),
    path(
        "rooms/<slug:slug>/members/<str:username>/",
        views.RoomMemberView.as_view(),
        name="room-member",
    ),
    path("realtime/ticket/", views.TicketView.as_view(), name="ticket"),
    path("realtime/asyncapi.json", docs_views.asyncapi_document, name="asyncapi"),
]
