"""No HTTP views: the tutorial's page is irrelevant to the benchmark (HTTP answers 404)."""

urlpatterns: list = []
