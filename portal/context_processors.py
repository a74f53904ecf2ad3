def membership(request):
    """The base layout names the firm and the person and picks the navigation for the role."""
    return {
        "membership": getattr(request, "membership", None),
        "firm": getattr(request, "firm", None),
    }
