// SAFE twin of ping_cmd.js: no shell, the host is validated and passed as an argument.
const express = require("express");
const { execFile } = require("child_process");
const app = express();

app.get("/ping", (req, res) => {
  const host = String(req.query.host || "");
  if (!/^[a-zA-Z0-9.-]{1,253}$/.test(host)) {
    return res.status(400).send("bad host");
  }
  execFile("ping", ["-c", "1", host], (err, out) => {
    res.send(out);
  });
});
