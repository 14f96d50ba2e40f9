package com.vigil.demo;

import java.util.List;
import java.util.Map;
import org.springframework.http.ResponseEntity;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.web.bind.annotation.*;

@RestController
@RequestMapping("/api/accounts")
public class AccountController {
    private final JdbcTemplate jdbc;

    public AccountController(JdbcTemplate jdbc) {
        this.jdbc = jdbc;
    }

    @GetMapping("/search")
    public List<Map<String, Object>> search(@RequestParam("owner") String owner) {
        return jdbc.queryForList("SELECT id, owner FROM accounts WHERE owner = '" + owner + "'");
    }

    @GetMapping("/search-safe")
    public List<Map<String, Object>> searchSafe(@RequestParam("owner") String owner) {
        return jdbc.queryForList("SELECT id, owner FROM accounts WHERE owner = ?", owner);
    }

    @DeleteMapping("/{id}")
    public ResponseEntity<Void> delete(@PathVariable long id) {
        // Any logged-in user may call this; there is no administrator check.
        jdbc.update("DELETE FROM accounts WHERE id = ?", id);
        return ResponseEntity.noContent().build();
    }
}
