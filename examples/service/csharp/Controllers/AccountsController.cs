using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Mvc;

namespace Demo.Controllers;

[ApiController]
[Route("api/[controller]")]
public class AccountsController : ControllerBase
{
    [HttpPost("register")]
    public IActionResult Register([FromForm] string user, [FromForm] string password)
    {
        var hash = Convert.ToHexString(MD5.HashData(Encoding.UTF8.GetBytes(password)));
        Users.Save(user, hash);
        return Ok();
    }

    [HttpGet("preview")]
    public IActionResult Preview([FromQuery] string q)
    {
        return Content($"<p>{q}</p>", "text/html");
    }

    [HttpGet("preview-safe")]
    public IActionResult PreviewSafe([FromQuery] string q)
    {
        return Content($"<p>{HtmlEncoder.Default.Encode(q)}</p>", "text/html");
    }
}
