package main

import (
	"os/exec"
	"regexp"

	"github.com/gin-gonic/gin"
)

var hostPattern = regexp.MustCompile(`^[a-zA-Z0-9.-]{1,253}$`)

func main() {
	r := gin.Default()
	v1 := r.Group("/api/v1")
	v1.GET("/lookup", Lookup)
	v1.GET("/lookup/safe", LookupSafe)
	r.Run(":8080")
}

func Lookup(c *gin.Context) {
	host := c.Query("host")
	out, _ := exec.Command("sh", "-c", "nslookup "+host).CombinedOutput()
	c.String(200, string(out))
}

func LookupSafe(c *gin.Context) {
	host := c.Query("host")
	if !hostPattern.MatchString(host) {
		c.String(400, "bad host")
		return
	}
	out, _ := exec.Command("nslookup", host).CombinedOutput()
	c.String(200, string(out))
}
