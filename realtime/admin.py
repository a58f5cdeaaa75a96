from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from realtime import services
from realtime.models import Membership, Message, Room


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "is_private", "created_by", "created_at")
    list_filter = ("is_private", "created_at")
    search_fields = ("slug", "title")
    autocomplete_fields = ("created_by",)
    readonly_fields = ("created_at",)
    inlines = (MembershipInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> tuple:
        # A slug is a room's public name on the wire; renaming it under joined sockets and
        # reusing the old name for a new room would confuse every client. Set once.
        if obj is not None:
            return (*self.readonly_fields, "slug")
        return self.readonly_fields


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("room", "user", "role", "created_at")
    list_filter = ("role", "room")
    search_fields = ("room__slug", "user__username", "user__email")
    autocomplete_fields = ("room", "user")
    list_select_related = ("room", "user")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """What people said is read here, and redacted, never rewritten or deleted: a message's
    seq must stay taken, or every resuming client would take the hole for a lost message."""

    list_display = ("id", "room", "seq", "author", "short_body", "created_at", "redacted_at")
    list_filter = ("room", "created_at")
    search_fields = ("body", "author__username", "room__slug")
    date_hierarchy = "created_at"
    list_select_related = ("room", "author")
    readonly_fields = ("room", "seq", "author", "body", "created_at", "redacted_at")
    fields = readonly_fields
    actions = ("redact_messages",)
    # The list view pages by id; counting every row of a large table on each page is slow.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    @admin.action(description="Redact selected messages (blank their bodies for good)")
    def redact_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        redacted = services.message_redact(messages=queryset)
        self.message_user(request, f"Redacted {redacted} message(s).", messages.SUCCESS)

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        return message.body if len(message.body) <= 80 else message.body[:77] + "..."
