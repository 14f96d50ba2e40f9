//! Route discovery per framework on small hand-written snippets: each test states the
//! endpoints (method, route, handler, handler lines) a developer reading the code would list.

use vigil_scan::{discover_files, CodeUnit, DiscoveryOptions, UnitKind};

/// (path, method, route, handler, start_line, end_line) of every endpoint.
fn endpoints(files: &[(&str, &str)]) -> Vec<(String, String, String, String, usize, usize)> {
    let d = discover_files(
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        &DiscoveryOptions::default(),
    );
    let mut v: Vec<_> = d
        .units
        .iter()
        .filter_map(|u| match &u.kind {
            UnitKind::Endpoint {
                method,
                route,
                handler,
            } => Some((
                u.path.clone(),
                method.clone(),
                route.clone(),
                handler.clone(),
                u.start_line,
                u.end_line,
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn e(
    p: &str,
    m: &str,
    r: &str,
    h: &str,
    s: usize,
    end: usize,
) -> (String, String, String, String, usize, usize) {
    (p.into(), m.into(), r.into(), h.into(), s, end)
}

fn units(files: &[(&str, &str)]) -> Vec<CodeUnit> {
    discover_files(
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        &DiscoveryOptions::default(),
    )
    .units
}

#[test]
fn flask_routes_methods_and_blueprint_prefix() {
    let src = r#"from flask import Flask, Blueprint, request
app = Flask(__name__)
bp = Blueprint("users", __name__, url_prefix="/api/users")

@app.route("/health")
def health():
    return "ok"

@bp.route("/<int:uid>", methods=["GET", "DELETE"])
def user(uid):
    return str(uid)

@bp.post("/")
def create():
    return "", 201

def helper(x):
    return x * 2
"#;
    assert_eq!(
        endpoints(&[("app.py", src)]),
        vec![
            e("app.py", "DELETE", "/api/users/<int:uid>", "user", 9, 11),
            e("app.py", "GET", "/api/users/<int:uid>", "user", 9, 11),
            e("app.py", "GET", "/health", "health", 5, 7),
            e("app.py", "POST", "/api/users", "create", 13, 15),
        ]
    );
    let u = units(&[("app.py", src)]);
    let helper = u
        .iter()
        .find(|u| {
            u.kind
                == UnitKind::Function {
                    name: "helper".into(),
                }
        })
        .expect("helper unit");
    assert_eq!((helper.start_line, helper.end_line), (17, 18));
    assert!(
        helper.context.contains("from flask import"),
        "{}",
        helper.context
    );
    assert_eq!(
        u.iter()
            .find(|u| u.start_line == 5)
            .unwrap()
            .framework
            .as_deref(),
        Some("flask")
    );
}

#[test]
fn flask_add_url_rule_with_functions_and_method_views() {
    let app = r#"from flask import Flask, Blueprint
from . import views
from .things import ThingAPI

app = Flask(__name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")

def ping():
    return "pong"

app.add_url_rule("/ping", "ping", ping)
app.add_url_rule("/users/<int:uid>", view_func=views.show_user, methods=["GET", "PUT"])
admin.add_url_rule("/things", view_func=ThingAPI.as_view("things"))
app.add_url_rule("/static-ish", endpoint="x")
"#;
    let views = r#"def show_user(uid):
    return str(uid)
"#;
    let things = r#"from flask.views import MethodView

class ThingAPI(MethodView):
    def get(self):
        return "[]"

    def post(self):
        return "", 201
"#;
    let found = endpoints(&[
        ("app/__init__.py", app),
        ("app/views.py", views),
        ("app/things.py", things),
    ]);
    let routes: Vec<(String, String, String)> = found
        .iter()
        .map(|e| (e.0.clone(), e.1.clone(), e.2.clone()))
        .collect();
    for want in [
        ("app/__init__.py", "GET", "/ping"),
        ("app/views.py", "GET", "/users/<int:uid>"),
        ("app/views.py", "PUT", "/users/<int:uid>"),
    ] {
        assert!(
            routes.contains(&(want.0.into(), want.1.into(), want.2.into())),
            "{want:?} not in {found:?}"
        );
    }
    // The method view's verbs serve the blueprint-prefixed rule.
    let things: Vec<_> = found.iter().filter(|e| e.2 == "/admin/things").collect();
    assert!(
        things
            .iter()
            .any(|e| e.0 == "app/things.py" && e.3.contains("get")),
        "{found:?}"
    );
    assert!(
        things
            .iter()
            .any(|e| e.0 == "app/things.py" && e.3.contains("post")),
        "{found:?}"
    );
    // A rule without a view function registers nothing.
    assert!(!found.iter().any(|e| e.2 == "/static-ish"), "{found:?}");
}

#[test]
fn flask_blueprints_registered_from_other_modules_get_their_prefix() {
    let app = r#"from flask import Flask
from .users import bp as users_bp
from . import orders

app = Flask(__name__)
app.register_blueprint(users_bp, url_prefix="/api/users")
app.register_blueprint(orders.bp, url_prefix="/api/orders")
"#;
    let users = r#"from flask import Blueprint
bp = Blueprint("users", __name__)

@bp.get("/<int:uid>")
def show(uid):
    return str(uid)
"#;
    let orders = r#"from flask import Blueprint
bp = Blueprint("orders", __name__)

@bp.post("/")
def create():
    return "", 201
"#;
    assert_eq!(
        endpoints(&[
            ("shop/__init__.py", app),
            ("shop/users.py", users),
            ("shop/orders/__init__.py", orders),
        ]),
        vec![
            e(
                "shop/orders/__init__.py",
                "POST",
                "/api/orders",
                "create",
                4,
                6
            ),
            e("shop/users.py", "GET", "/api/users/<int:uid>", "show", 4, 6),
        ]
    );
}

#[test]
fn fastapi_router_prefix() {
    let src = r#"from fastapi import APIRouter, FastAPI
app = FastAPI()
router = APIRouter(prefix="/items")

@router.get("/{item_id}")
async def read_item(item_id: int):
    return {"id": item_id}

@settings.get("debug")
def not_a_route():
    pass

@app.put("/things/{tid}")
def put_thing(tid: int):
    return tid
"#;
    assert_eq!(
        endpoints(&[("main.py", src)]),
        vec![
            e("main.py", "GET", "/items/{item_id}", "read_item", 5, 7),
            e("main.py", "PUT", "/things/{tid}", "put_thing", 13, 15),
        ]
    );
}

#[test]
fn django_urls_join_views_and_class_based_views() {
    let urls = r#"from django.urls import path, re_path
from . import views
from .views import OrderView

urlpatterns = [
    path("api/users/<int:pk>/", views.user_detail),
    path("api/orders/", OrderView.as_view()),
    re_path(r"^api/legacy/$", views.legacy),
]
"#;
    let views = r#"from django.http import JsonResponse
from django.views import View
from django.views.decorators.http import require_POST

def user_detail(request, pk):
    return JsonResponse({"id": pk})

@require_POST
def legacy(request):
    return JsonResponse({})

class OrderView(View):
    def get(self, request):
        return JsonResponse([])

    def post(self, request):
        return JsonResponse({}, status=201)
"#;
    assert_eq!(
        endpoints(&[("shop/urls.py", urls), ("shop/views.py", views)]),
        vec![
            e(
                "shop/views.py",
                "ANY",
                "/api/users/<int:pk>",
                "user_detail",
                5,
                6
            ),
            e(
                "shop/views.py",
                "GET",
                "/api/orders",
                "OrderView.get",
                13,
                14
            ),
            e("shop/views.py", "POST", "/api/legacy", "legacy", 8, 10),
            e(
                "shop/views.py",
                "POST",
                "/api/orders",
                "OrderView.post",
                16,
                17
            ),
        ]
    );
}

#[test]
fn express_inline_named_mounted_and_chained_routes() {
    let src = r#"const express = require("express");
const app = express();
const router = express.Router();

router.get("/users/:id", requireLogin, async (req, res) => {
  res.json({ id: req.params.id });
});

async function listUsers(req, res) {
  res.json([]);
}
router.get("/users", listUsers);
router.route("/orders").post((req, res) => res.sendStatus(201));
app.use("/api", router);
app.get("/health", (req, res) => res.send("ok"));
axios.get("/not-a-route", cb);
"#;
    assert_eq!(
        endpoints(&[("server.js", src)]),
        vec![
            e("server.js", "GET", "/api/users", "listUsers", 9, 11),
            e("server.js", "GET", "/api/users/:id", "(inline)", 5, 7),
            e("server.js", "GET", "/health", "(inline)", 15, 15),
            e("server.js", "POST", "/api/orders", "(inline)", 13, 13),
        ]
    );
}

#[test]
fn nestjs_controller_prefix_and_method_decorators() {
    let src = r#"import { Controller, Get, Post, Param } from "@nestjs/common";

@Controller("api/cats")
export class CatsController {
  @Get()
  findAll() {
    return [];
  }

  @Get(":id")
  @UseGuards(AuthGuard)
  findOne(@Param("id") id: string) {
    return id;
  }

  @Post({ path: "import" })
  importCats() {}
}
"#;
    assert_eq!(
        endpoints(&[("cats.controller.ts", src)]),
        vec![
            e(
                "cats.controller.ts",
                "GET",
                "/api/cats",
                "CatsController.findAll",
                5,
                8
            ),
            e(
                "cats.controller.ts",
                "GET",
                "/api/cats/:id",
                "CatsController.findOne",
                10,
                14
            ),
            e(
                "cats.controller.ts",
                "POST",
                "/api/cats/import",
                "CatsController.importCats",
                16,
                17
            ),
        ]
    );
}

#[test]
fn spring_class_prefix_and_mappings() {
    let src = r#"package com.example;

import org.springframework.web.bind.annotation.*;

@RestController
@RequestMapping("/api/users")
public class UserController {
    @GetMapping("/{id}")
    public User get(@PathVariable long id) {
        return repo.find(id);
    }

    @PostMapping
    public User create(@RequestBody User u) { return u; }

    @RequestMapping(value = "/search", method = RequestMethod.POST)
    public List<User> search() { return null; }

    private void audit() {}
}
"#;
    assert_eq!(
        endpoints(&[("UserController.java", src)]),
        vec![
            e(
                "UserController.java",
                "GET",
                "/api/users/{id}",
                "UserController.get",
                8,
                11
            ),
            e(
                "UserController.java",
                "POST",
                "/api/users",
                "UserController.create",
                13,
                14
            ),
            e(
                "UserController.java",
                "POST",
                "/api/users/search",
                "UserController.search",
                16,
                17
            ),
        ]
    );
    let u = units(&[("UserController.java", src)]);
    let audit = u
        .iter()
        .find(|u| {
            u.kind
                == UnitKind::Function {
                    name: "UserController.audit".into(),
                }
        })
        .expect("audit unit");
    assert!(
        audit.context.contains("@RequestMapping(\"/api/users\")"),
        "{}",
        audit.context
    );
}

#[test]
fn laravel_routes_file_joins_controller_methods_with_group_prefix() {
    let routes = r#"<?php
use App\Http\Controllers\UserController;
use Illuminate\Support\Facades\Route;

Route::get('/users/{id}', [UserController::class, 'show']);
Route::prefix('admin')->group(function () {
    Route::post('/users', 'UserController@store');
});
Route::get('/ping', function () {
    return 'pong';
});
Route::get('/gone', [MissingController::class, 'index']);
"#;
    let ctrl = r#"<?php
namespace App\Http\Controllers;

class UserController extends Controller
{
    public function show($id)
    {
        return User::find($id);
    }

    public function store(Request $request)
    {
        return User::create($request->all());
    }
}
"#;
    assert_eq!(
        endpoints(&[
            ("routes/web.php", routes),
            ("app/Http/Controllers/UserController.php", ctrl)
        ]),
        vec![
            e(
                "app/Http/Controllers/UserController.php",
                "GET",
                "/users/{id}",
                "UserController.show",
                6,
                9
            ),
            e(
                "app/Http/Controllers/UserController.php",
                "POST",
                "/admin/users",
                "UserController.store",
                11,
                14
            ),
            e(
                "routes/web.php",
                "GET",
                "/gone",
                "MissingController.index",
                12,
                12
            ),
            e("routes/web.php", "GET", "/ping", "(closure)", 9, 11),
        ]
    );
    let u = units(&[("routes/web.php", routes)]);
    let gone = u
        .iter()
        .find(|u| u.start_line == 12)
        .expect("unresolved route unit");
    assert!(
        gone.notes
            .iter()
            .any(|n| n.contains("MissingController.index was not found")),
        "{:?}",
        gone.notes
    );
    // routes/api.php gets Laravel's implicit /api prefix
    let api = endpoints(&[("routes/api.php", "<?php\nRoute::get('/x', fn () => 1);\n")]);
    assert_eq!(
        api,
        vec![e("routes/api.php", "GET", "/api/x", "(closure)", 2, 2)]
    );
}

#[test]
fn gin_groups_and_handlers() {
    let src = r#"package main

import "github.com/gin-gonic/gin"

func main() {
	r := gin.Default()
	v1 := r.Group("/api/v1")
	admin := v1.Group("/admin")
	v1.GET("/users/:id", GetUser)
	admin.DELETE("/users/:id", h.DeleteUser)
	r.GET("/ping", func(c *gin.Context) {
		c.String(200, "pong")
	})
	r.Run()
}

func GetUser(c *gin.Context) {
	c.JSON(200, nil)
}

func (h *Handlers) DeleteUser(c *gin.Context) {
	c.Status(204)
}
"#;
    assert_eq!(
        endpoints(&[("main.go", src)]),
        vec![
            e(
                "main.go",
                "DELETE",
                "/api/v1/admin/users/:id",
                "Handlers.DeleteUser",
                21,
                23
            ),
            e("main.go", "GET", "/api/v1/users/:id", "GetUser", 17, 19),
            e("main.go", "GET", "/ping", "(inline)", 11, 13),
        ]
    );
}

#[test]
fn rails_routes_join_controller_actions() {
    let routes = r#"Rails.application.routes.draw do
  get "/status", to: "health#show"
  resources :users, only: [:index, :show] do
    member do
      post :lock
    end
  end
  namespace :admin do
    delete "reports/:id", to: "reports#destroy"
  end
end
"#;
    let users = r#"class UsersController < ApplicationController
  before_action :authenticate_user!

  def index
    render json: User.all
  end

  def show
    render json: User.find(params[:id])
  end

  def lock
    User.find(params[:id]).lock!
  end
end
"#;
    let admin = r#"module Admin
  class ReportsController < ApplicationController
    def destroy
      Report.find(params[:id]).destroy
    end
  end
end
"#;
    assert_eq!(
        endpoints(&[
            ("config/routes.rb", routes),
            ("app/controllers/users_controller.rb", users),
            ("app/controllers/admin/reports_controller.rb", admin),
        ]),
        vec![
            e(
                "app/controllers/admin/reports_controller.rb",
                "DELETE",
                "/admin/reports/:id",
                "ReportsController.destroy",
                3,
                5
            ),
            e(
                "app/controllers/users_controller.rb",
                "GET",
                "/users",
                "UsersController.index",
                4,
                6
            ),
            e(
                "app/controllers/users_controller.rb",
                "GET",
                "/users/:id",
                "UsersController.show",
                8,
                10
            ),
            e(
                "app/controllers/users_controller.rb",
                "POST",
                "/users/:id/lock",
                "UsersController.lock",
                12,
                14
            ),
            e(
                "config/routes.rb",
                "GET",
                "/status",
                "HealthController.show",
                2,
                2
            ),
        ]
    );
}

#[test]
fn aspnet_controllers_and_minimal_apis() {
    let ctrl = r#"using Microsoft.AspNetCore.Mvc;

namespace Api.Controllers;

[ApiController]
[Route("api/[controller]")]
public class OrdersController : ControllerBase
{
    [HttpGet("{id}")]
    public IActionResult Get(int id)
    {
        return Ok(id);
    }

    [HttpPost]
    public IActionResult Create() => Ok();

    [HttpGet("~/health")]
    public IActionResult Health() => Ok();
}
"#;
    let program = r#"var app = WebApplication.Create(args);
var users = app.MapGroup("/users");
users.MapGet("/{id}", (int id) => Results.Ok(id));
app.MapPost("/login", Login);
app.Run();
"#;
    assert_eq!(
        endpoints(&[("OrdersController.cs", ctrl), ("Program.cs", program)]),
        vec![
            e(
                "OrdersController.cs",
                "GET",
                "/api/Orders/{id}",
                "OrdersController.Get",
                9,
                13
            ),
            e(
                "OrdersController.cs",
                "GET",
                "/health",
                "OrdersController.Health",
                18,
                19
            ),
            e(
                "OrdersController.cs",
                "POST",
                "/api/Orders",
                "OrdersController.Create",
                15,
                16
            ),
            e("Program.cs", "GET", "/users/{id}", "(lambda)", 3, 3),
            e("Program.cs", "POST", "/login", "Login", 4, 4),
        ]
    );
}

#[test]
fn django_include_prefixes_nested_urls_files() {
    let root_urls = r#"from django.urls import include, path

urlpatterns = [
    path("api/v2/", include("shop.urls")),
]
"#;
    let shop_urls = r#"from django.urls import path
from . import views

urlpatterns = [
    path("items/<int:pk>/", views.item),
]
"#;
    let views = "def item(request, pk):\n    return pk\n";
    assert_eq!(
        endpoints(&[
            ("project/urls.py", root_urls),
            ("shop/urls.py", shop_urls),
            ("shop/views.py", views),
        ]),
        vec![e(
            "shop/views.py",
            "ANY",
            "/api/v2/items/<int:pk>",
            "item",
            1,
            2
        )]
    );
}

#[test]
fn express_routers_mounted_from_another_file() {
    let app = r#"const express = require("express");
const users = require("./routes/users");
import orders from "./routes/orders.js";
const app = express();
app.use("/api/users", users);
app.use("/api/orders", orders);
app.use("/health", require("./routes/health"));
"#;
    let users = "const express = require(\"express\");\nconst router = express.Router();\nrouter.get(\"/:id\", (req, res) => res.json({}));\nmodule.exports = router;\n";
    let orders = "import { Router } from \"express\";\nconst router = Router();\nrouter.post(\"/\", (req, res) => res.sendStatus(201));\nexport default router;\n";
    let health = "const express = require(\"express\");\nconst router = express.Router();\nrouter.get(\"/\", (req, res) => res.send(\"ok\"));\nmodule.exports = router;\n";
    assert_eq!(
        endpoints(&[
            ("src/app.js", app),
            ("src/routes/users.js", users),
            ("src/routes/orders.js", orders),
            ("src/routes/health/index.js", health),
        ]),
        vec![
            e(
                "src/routes/health/index.js",
                "GET",
                "/health",
                "(inline)",
                3,
                3
            ),
            e(
                "src/routes/orders.js",
                "POST",
                "/api/orders",
                "(inline)",
                3,
                3
            ),
            e(
                "src/routes/users.js",
                "GET",
                "/api/users/:id",
                "(inline)",
                3,
                3
            ),
        ]
    );
}
