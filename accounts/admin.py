from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.authentication import AuthenticatedHttpRequest
from accounts.models import LoginSession, User


class UserAddForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class OpenSessionInline(admin.TabularInline):
    """The user's open sign-in sessions, read-only; end them from the sessions list."""

    model = LoginSession
    extra = 0
    can_delete = False
    fields = ("created_at", "last_refreshed_at", "expires_at", "ip_address", "user_agent")
    readonly_fields = fields
    verbose_name_plural = "open sign-in sessions"

    def get_queryset(self, request: HttpRequest) -> QuerySet[LoginSession]:
        return super().get_queryset(request).filter(revoked_at__isnull=True)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at", "last_refreshed_at", "ip_address", "revoked_reason")
    list_filter = ("revoked_reason", "created_at")
    search_fields = ("user__username", "user__email", "ip_address")
    list_select_related = ("user",)
    actions = ("revoke_sessions",)
    readonly_fields = (
        "user",
        "created_at",
        "last_refreshed_at",
        "expires_at",
        "ip_address",
        "user_agent",
        "revoked_at",
        "revoked_reason",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Revoke selected sessions (signs them out, closes their sockets)")
    def revoke_sessions(self, request: HttpRequest, queryset: QuerySet[LoginSession]) -> None:
        ended = 0
        for user_id, session_ids in _by_user(queryset.filter(revoked_at__isnull=True)).items():
            ended += services.sessions_revoke(
                user_ids=[user_id],
                session_ids=session_ids,
                reason=LoginSession.EndReason.REVOKED_BY_ADMIN,
            )
        self.message_user(request, f"Revoked {ended} session(s).", messages.SUCCESS)


def _by_user(sessions: QuerySet[LoginSession]) -> dict[int, list]:
    grouped: dict[int, list] = {}
    for session_id, user_id in sessions.values_list("pk", "user_id"):
        grouped.setdefault(user_id, []).append(session_id)
    return grouped


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserAddForm
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),
    )
    list_display = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "date_joined",
        "last_login",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("-date_joined",)
    date_hierarchy = "date_joined"
    actions = ("deactivate_users", "reactivate_users")
    inlines = (OpenSessionInline,)

    def get_inlines(self, request: HttpRequest, obj: User | None) -> tuple:
        # A user being added has no sessions yet.
        return self.inlines if obj is not None else ()

    @admin.action(description="Deactivate selected users (ends their sessions)")
    def deactivate_users(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[User]
    ) -> None:
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You cannot deactivate yourself.", messages.ERROR)
            queryset = queryset.exclude(pk=request.user.pk)
        changed = services.user_set_active(users=queryset, active=False)
        self.message_user(request, f"Deactivated {changed} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected users")
    def reactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        changed = services.user_set_active(users=queryset, active=True)
        self.message_user(request, f"Reactivated {changed} user(s).", messages.SUCCESS)
