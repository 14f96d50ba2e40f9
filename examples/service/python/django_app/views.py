from django.http import HttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET


@require_GET
def greet(request):
    name = request.GET.get("name", "")
    return HttpResponse(f"<h1>Hello {name}</h1>")


@require_GET
def greet_safe(request):
    name = request.GET.get("name", "")
    return HttpResponse(f"<h1>Hello {escape(name)}</h1>")
