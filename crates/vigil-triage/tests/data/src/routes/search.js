const express = require("express");
const router = express.Router();

router.get("/search", (req, res) => {
  const q = req.query.q;
  res.send("<h1>Results for " + q + "</h1>");
});

router.get("/health", (req, res) => {
  res.json({ ok: true });
});

module.exports = router;
