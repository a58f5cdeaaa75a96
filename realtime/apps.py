from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Chat"

    def ready(self) -> None:
        from realtime import receivers  # noqa: F401  (connects signal receivers)
