from urllib.parse import urlparse

import requests
from fastapi import Depends, FastAPI, HTTPException

from .auth import get_current_user
from .db import invoices

app = FastAPI()
ALLOWED_HOSTS = {"images.example.com"}


@app.get("/fetch")
def fetch_url(url: str):
    resp = requests.get(url, timeout=5)
    return {"status": resp.status_code, "body": resp.text[:200]}


@app.get("/fetch/safe")
def fetch_url_safe(url: str):
    parsed = urlparse(url)
    if parsed.scheme != "https" or parsed.hostname not in ALLOWED_HOSTS:
        raise HTTPException(status_code=400, detail="host not allowed")
    resp = requests.get(url, timeout=5, allow_redirects=False)
    return {"status": resp.status_code}


@app.get("/invoices/{invoice_id}")
def get_invoice(invoice_id: int, user=Depends(get_current_user)):
    invoice = invoices.get(invoice_id)
    if invoice is None:
        raise HTTPException(status_code=404)
    return invoice
