"""The SAM template and the event files, checked offline.

cfn-lint validates the template against the resource schemas; it does not know our code, so
these tests check what ties the two together (handlers, environment, routes, metrics, events)
and what FACTS.md says the linters miss (bad schedule rates, timeouts over 900 s).
"""

from __future__ import annotations

import ast
import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
LAMBDA_MAX_TIMEOUT = 900
HTTP_API_MAX_INTEGRATION_MS = 30_000

# Settings fields the template deliberately leaves to their defaults in AWS.
NOT_SET_IN_AWS = {
    "database_url": "AWS reads credentials from DB_SECRET_ARN",
    "backoff_base_seconds": "default retry backoff",
    "backoff_cap_seconds": "default retry backoff",
    "safety_margin_seconds": "default margin before the Lambda's limit",
    "db_pool_size": "a Lambda container needs the default (one connection, plus the heartbeat)",
    "osrm_cache_dir": "datasets from S3 go to /tmp, Lambda's only writable folder",
    "osrm_snap_radius_m": "default: a stop 500 m from any road is an input error",
    "osrm_http_timeout_seconds": "default request timeout for a user's OSRM server",
    "osrm_http_retries": "default retries for a user's OSRM server",
    "osrm_http_max_table_size": "osrm-routed's own default limit (100)",
    "location_region": "Amazon Location in the stack's own region",
    "location_endpoint_url": "the service's public endpoint (tests point it at 127.0.0.1)",
    **dict.fromkeys((
        "db_statement_timeout_seconds", "db_api_statement_timeout_seconds",
        "db_lock_timeout_seconds", "db_idle_in_transaction_timeout_seconds",
        "db_keepalives_idle_seconds", "migration_lock_timeout_seconds",
        "migration_statement_timeout_seconds"), "default database limits (jobworker.aws.timeouts)"),
}
API_ONLY = {"max_body_bytes", "poller_function_name", "poller_memory_mb", "tile_url"}
MIGRATE_ONLY = {"runtime_role_secrets"}
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


@cache
def template() -> dict[str, Any]:
    """The template with CloudFormation's short tags (!Ref, !If, ...) in their long form."""
    from cfnlint.decode.decode import decode  # type: ignore[import-untyped]

    data, problems = decode(str(TEMPLATE))
    assert not problems, [str(problem) for problem in problems]
    assert isinstance(data, dict)
    return data


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template()["Resources"].items() if res["Type"] == kind}


def parameter(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = template()["Parameters"][name]
    return spec


def function_names() -> list[str]:
    return sorted(resources("AWS::Serverless::Function"))


def function(name: str) -> dict[str, Any]:
    """A function's properties with the Globals merged in, as SAM does."""
    merged = copy.deepcopy(dict(template().get("Globals", {}).get("Function", {})))
    for key, value in template()["Resources"][name]["Properties"].items():
        if key == "Environment":
            variables = merged.setdefault("Environment", {}).setdefault("Variables", {})
            variables.update(value.get("Variables", {}))
        else:
            merged[key] = value
    return merged


def environment(name: str) -> dict[str, Any]:
    return dict(function(name).get("Environment", {}).get("Variables", {}))


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# --- Linting ---------------------------------------------------------------------------------

def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_file  # type: ignore[import-untyped]

    problems = lint_file(TEMPLATE)
    assert not problems, "\n".join(str(problem) for problem in problems)


# --- Functions and their code ----------------------------------------------------------------

def top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):  # functions/ re-export jobworker's handlers
            names.update(alias.asname or alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("name", function_names())
def test_handler_resolves_to_a_callable_in_the_code(name: str) -> None:
    props = function(name)
    module, _, attribute = props["Handler"].rpartition(".")
    source = ROOT / props["CodeUri"] / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{name}: {source} does not exist"
    assert attribute in top_level_names(source), f"{name}: no {attribute} in {source}"


@pytest.mark.parametrize("name", function_names())
def test_function_runs_python312_on_arm64_with_the_layer(name: str) -> None:
    props = function(name)
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert ref("JobworkerLayer") in props["Layers"]


def test_layer_is_built_for_python312_on_arm64() -> None:
    layer = template()["Resources"]["JobworkerLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
    assert "build-JobworkerLayer:" in makefile
    assert "infra/build_layer.py" in makefile


def timeout_bounds(value: Any) -> list[float]:
    """The values a Timeout can take: a literal, or a parameter's default and maximum."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        spec = parameter(value["Ref"])
        assert "MaxValue" in spec, f"parameter {value['Ref']} needs a MaxValue"
        return [float(spec["Default"]), float(spec["MaxValue"])]
    return [float(value)]


@pytest.mark.parametrize("name", function_names())
def test_timeout_is_within_lambdas_limit(name: str) -> None:
    assert all(0 < seconds <= LAMBDA_MAX_TIMEOUT
               for seconds in timeout_bounds(function(name)["Timeout"]))


def test_api_answers_before_api_gateway_gives_up() -> None:
    integration = template()["Resources"]["HttpApiIntegration"]["Properties"]
    assert integration["TimeoutInMillis"] <= HTTP_API_MAX_INTEGRATION_MS
    assert function("ApiFunction")["Timeout"] * 1000 < integration["TimeoutInMillis"]


# --- Environment -----------------------------------------------------------------------------

def settings_fields() -> set[str]:
    from jobworker.aws.settings import Settings

    return set(Settings.model_fields)


def test_fields_left_unset_still_exist() -> None:
    assert set(NOT_SET_IN_AWS) | API_ONLY | MIGRATE_ONLY <= settings_fields()


@pytest.mark.parametrize("name", function_names())
def test_environment_sets_every_setting_the_runtime_needs(name: str) -> None:
    wanted = settings_fields() - set(NOT_SET_IN_AWS)
    if name != "ApiFunction":
        wanted -= API_ONLY
    if name != "MigrateFunction":
        wanted -= MIGRATE_ONLY
    missing = ({field.upper() for field in wanted} | POWERTOOLS) - set(environment(name))
    assert not missing, f"{name} lacks {sorted(missing)}"


@pytest.mark.parametrize("name", function_names())
def test_environment_names_only_known_settings(name: str) -> None:
    known = {field.upper() for field in settings_fields()} | POWERTOOLS
    assert set(environment(name)) <= known, set(environment(name)) - known


def test_api_kicks_the_poller_of_this_stack() -> None:
    assert environment("ApiFunction")["POLLER_FUNCTION_NAME"] == ref("PollerFunction")


def test_connections_disable_prepared_statements() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DB_DISABLE_PREPARED_STATEMENTS"] == "true"
    assert variables["DB_HOST"] == {
        "Fn::If": ["CreateDatabase", get_att("DbProxy", "Endpoint"), ref("DbProxyEndpoint")]
    }


def test_an_existing_database_says_where_the_runtime_roles_connect() -> None:
    """The role secrets carry no host, port or dbname: with an existing database the stack
    refuses to deploy without DbProxyEndpoint and DbName, and passes DbPort on."""
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DB_PORT"] == {"Fn::If": ["CreateDatabase", "5432", ref("DbPort")]}
    assert variables["DB_NAME"] == {"Fn::If": ["HasDbName", ref("DbName"), "jobworker"]}
    rule = template()["Rules"]["ExistingDatabaseNeedsWhereAndWhich"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [ref("DbSecretArn"), ""]}]}
    required = [assertion["Assert"]["Fn::Not"][0]["Fn::Equals"][0]
                for assertion in rule["Assertions"]]
    assert required == [ref("DbProxyEndpoint"), ref("DbName")]
    outputs = template()["Outputs"]
    assert {outputs[f"{name}DbSecretArn"]["Value"]["Ref"] for name in ("Api", "Poller", "Sweeper")
            } == {"ApiDbSecret", "PollerDbSecret", "SweeperDbSecret"}


# --- IAM ------------------------------------------------------------------------------------

def statements(name: str) -> list[dict[str, Any]]:
    """Inline statements of a function's policies (SAM policy templates are kept apart)."""
    found = []
    for policy in function(name).get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(as_list(policy["Statement"]))
    return found


def grants_invoke(statement: dict[str, Any]) -> bool:
    actions = {str(action).lower() for action in as_list(statement["Action"])}
    return bool(actions & {"lambda:invokefunction", "lambda:*", "*"})


def secret_policy(name: str) -> dict[str, Any]:
    return {"AWSSecretsManagerGetSecretValuePolicy": {
        "SecretArn": environment(name)["DB_SECRET_ARN"],
    }}


def test_api_may_invoke_the_poller_and_nothing_else() -> None:
    invokes = [s for s in statements("ApiFunction") if grants_invoke(s)]
    assert invokes, "the API needs lambda:InvokeFunction for the kick"
    for statement in invokes:
        assert statement["Effect"] == "Allow"
        assert as_list(statement["Resource"]) == [get_att("PollerFunction", "Arn")]
    templates = [p for p in function("ApiFunction")["Policies"] if "Statement" not in p]
    assert templates == [secret_policy("ApiFunction")]


@pytest.mark.parametrize("name", ["SweeperFunction", "MigrateFunction"])
def test_background_functions_may_only_read_the_secret(name: str) -> None:
    assert function(name)["Policies"][0] == secret_policy(name)
    if name != "MigrateFunction":
        assert function(name)["Policies"] == [secret_policy(name)]


MASTER_SECRET = {"Fn::If": ["CreateDatabase", {"Ref": "DbSecret"}, {"Ref": "DbSecretArn"}]}
ROLE_SECRETS = {"ApiFunction": "ApiDbSecret", "PollerFunction": "PollerDbSecret",
                "SweeperFunction": "SweeperDbSecret"}


@pytest.mark.parametrize(("name", "secret"), ROLE_SECRETS.items())
def test_each_function_connects_with_its_own_role_secret(name: str, secret: str) -> None:
    assert environment(name)["DB_SECRET_ARN"] == {"Ref": secret}
    assert environment(name)["DB_SSLMODE"] == "verify-full"


def test_only_the_migration_reads_the_master_secret() -> None:
    readers = [name for name in ("ApiFunction", "PollerFunction", "SweeperFunction",
                                 "MigrateFunction")
               if secret_policy_for(MASTER_SECRET) in function(name)["Policies"]]
    assert readers == ["MigrateFunction"]
    assert environment("MigrateFunction")["DB_SECRET_ARN"] == MASTER_SECRET
    granted = function("MigrateFunction")["Policies"][1:]
    assert granted == [secret_policy_for({"Ref": s}) for s in ROLE_SECRETS.values()]


def secret_policy_for(arn: Any) -> dict[str, Any]:
    return {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": arn}}


# What the poller may do besides reading the secret, and the condition that grants it.
ROAD_GRANTS = {
    "OsrmFromS3": {"s3:GetObject", "s3:ListBucket"},
    "OsrmFromEfs": {"elasticfilesystem:ClientMount"},
    "AllowAmazonLocation": {"geo-routes:CalculateRouteMatrix", "geo-routes:CalculateRoutes"},
}


def test_poller_reads_the_secret_and_road_data_only_where_the_parameters_say() -> None:
    policies = function("PollerFunction")["Policies"]
    assert policies[0] == secret_policy("PollerFunction")
    granted = {}
    for policy in policies[1:]:
        condition, statement, otherwise = policy["Fn::If"]
        assert otherwise == ref("AWS::NoValue")
        granted[condition] = {action for s in statement["Statement"]
                              for action in as_list(s["Action"])}
    assert granted == ROAD_GRANTS


def test_poller_mounts_the_road_data_only_from_efs() -> None:
    condition, mounts, otherwise = function("PollerFunction")["FileSystemConfigs"]["Fn::If"]
    assert condition == "OsrmFromEfs"
    assert otherwise == ref("AWS::NoValue")
    _, _, not_s3 = environment("PollerFunction")["OSRM_DATA"]["Fn::If"]
    assert not_s3 == {"Fn::If": ["OsrmFromEfs", mounts[0]["LocalMountPath"], ""]}, (
        "OSRM_DATA names the folder EFS is mounted at")


def test_scheduler_may_start_only_the_poller_and_sweeper() -> None:
    role = template()["Resources"]["SchedulerRole"]["Properties"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "scheduler.amazonaws.com"}
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == [get_att("PollerFunction", "Arn"),
                                     get_att("SweeperFunction", "Arn")]


# --- Schedules ------------------------------------------------------------------------------

RATE = re.compile(r"rate\((?P<value>\d+) (?P<unit>minute|minutes|hour|hours|day|days)\)")
CRON = re.compile(r"cron\((?P<fields>[^()]+)\)")


def is_valid_schedule(expression: str) -> bool:
    """EventBridge Scheduler's rules: singular unit for 1, plural above; a minute at least."""
    rate = RATE.fullmatch(expression)
    if rate:
        value = int(rate["value"])
        return value >= 1 and (value == 1) == (not rate["unit"].endswith("s"))
    cron = CRON.fullmatch(expression)
    return cron is not None and len(cron["fields"].split()) == 6


GOOD_SCHEDULES = ["rate(1 minute)", "rate(2 minutes)", "rate(15 minutes)", "rate(1 hour)",
                  "rate(3 days)", "cron(0/5 * * * ? *)"]
BAD_SCHEDULES = ["rate(5 minute)", "rate(1 minutes)", "rate(30 seconds)", "rate(0 minutes)",
                 "rate(1 second)", "rate(-1 minutes)", "rate(1  minute)", "cron(* * * *)",
                 "at(2026-01-01T00:00:00)", ""]


@pytest.mark.parametrize("expression", GOOD_SCHEDULES)
def test_schedule_rule__accepts(expression: str) -> None:
    assert is_valid_schedule(expression)


@pytest.mark.parametrize("expression", BAD_SCHEDULES)
def test_schedule_rule__rejects(expression: str) -> None:
    assert not is_valid_schedule(expression)


def schedule_expressions() -> list[tuple[str, Any]]:
    return [(name, res["Properties"]["ScheduleExpression"])
            for name, res in sorted(resources("AWS::Scheduler::Schedule").items())]


@pytest.mark.parametrize(("name", "expression"), schedule_expressions())
def test_schedule_expression_is_valid(name: str, expression: Any) -> None:
    if isinstance(expression, dict):
        spec = parameter(expression["Ref"])
        assert is_valid_schedule(spec["Default"]), f"{name}: default {spec['Default']!r}"
        pattern = re.compile(spec["AllowedPattern"])
        for example in GOOD_SCHEDULES:
            assert pattern.fullmatch(example), f"{name}: the parameter refuses {example!r}"
        for example in BAD_SCHEDULES:
            assert not pattern.fullmatch(example), f"{name}: the parameter allows {example!r}"
    else:
        assert is_valid_schedule(expression), f"{name}: {expression!r}"


def test_poller_is_started_every_minute() -> None:
    schedule = template()["Resources"]["PollerSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["Target"]["Arn"] == get_att("PollerFunction", "Arn")


@pytest.mark.parametrize(("name", "event_file"), [("PollerSchedule", "scheduled_tick.json"),
                                                  ("SweeperSchedule", "sweep_tick.json")])
def test_schedule_sends_the_event_in_events(name: str, event_file: str) -> None:
    props = template()["Resources"][name]["Properties"]
    assert props["FlexibleTimeWindow"]["Mode"] == "OFF"  # a bare OFF would be YAML's false
    sent = json.loads(props["Target"]["Input"])
    assert sent == json.loads((EVENTS / event_file).read_text())
    assert sent["source"] == "jobworker.schedule"


# --- Logs, alarms, migrations, database ---------------------------------------------------------

@pytest.mark.parametrize("name", function_names())
def test_function_logs_to_a_group_with_retention(name: str) -> None:
    group = function(name)["LoggingConfig"]["LogGroup"]
    resource = template()["Resources"][group["Ref"]]
    assert resource["Type"] == "AWS::Logs::LogGroup"
    assert resource["Properties"]["RetentionInDays"] == ref("LogRetentionDays")


def string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize(("alarm", "metric"), [("JobsFailedAlarm", "JobsFailed"),
                                               ("OldestQueuedAgeAlarm", "OldestQueuedAgeSeconds")])
def test_alarm_watches_a_metric_the_handlers_emit(alarm: str, metric: str) -> None:
    props = template()["Resources"][alarm]["Properties"]
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert props["MetricName"] == metric
    assert props["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert props["Dimensions"] == [{"Name": "service",
                                    "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    emitted = set().union(*(string_constants(path)
                            for path in (ROOT / "layer" / "jobworker").rglob("*.py")))
    assert metric in emitted


def test_migrations_run_on_deploy_before_the_functions_start() -> None:
    resources_ = template()["Resources"]
    migrations = resources_["Migrations"]
    assert migrations["Type"] == "Custom::Migrations"
    props = migrations["Properties"]
    assert props["ServiceToken"] == get_att("MigrateFunction", "Arn")
    assert props["LayerVersion"] == ref("JobworkerLayer")  # new code, new run
    assert props["ServiceTimeout"] > function("MigrateFunction")["Timeout"]
    for name in ("ApiFunction", "PollerFunction", "SweeperFunction"):
        assert "Migrations" in as_list(resources_[name].get("DependsOn", [])), name


def test_new_database_is_reached_through_a_tls_proxy() -> None:
    resources_ = template()["Resources"]
    for name in ("DbSecret", "DbInstance", "DbProxy", "DbProxyTargetGroup", "DbProxyRole"):
        assert resources_[name]["Condition"] == "CreateDatabase", name
    proxy = resources_["DbProxy"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    assert resources_["DbInstance"]["Properties"]["PubliclyAccessible"] is False


def test_new_database_looks_at_the_queue_for_autovacuum_more_often_than_once_a_minute() -> None:
    """autovacuum_naptime is the server's, not a table's: migration 0012 can lower the
    queue's thresholds, but only the parameter group makes autovacuum look sooner."""
    resources_ = template()["Resources"]
    instance = resources_["DbInstance"]["Properties"]
    assert instance["DBParameterGroupName"] == ref("DbParameters")
    group = resources_["DbParameters"]
    assert group["Condition"] == "CreateDatabase"
    # The family follows the engine's major version (postgres16 for "16").
    assert group["Properties"]["Family"] == {"Fn::Sub": "postgres${DbEngineVersion}"}
    assert int(group["Properties"]["Parameters"]["autovacuum_naptime"]) < 60


# --- The HTTP API ---------------------------------------------------------------------------

def template_routes() -> dict[str, dict[str, Any]]:
    return {res["Properties"]["RouteKey"]: res["Properties"]
            for res in resources("AWS::ApiGatewayV2::Route").values()}


def handler_routes() -> set[str]:
    """``METHOD /path`` for every route the API's resolver declares, in API Gateway syntax."""
    tree = ast.parse((ROOT / "layer" / "jobworker" / "api" / "app.py").read_text(encoding="utf-8"))
    routes = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "app"):
            continue
        if node.func.attr in ("get", "post", "put", "delete", "patch") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                path = re.sub(r"<(\w+)>", r"{\1}", first.value)
                routes.add(f"{node.func.attr.upper()} {path}")
        elif node.func.attr == "enable_swagger":
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "path" and isinstance(value, ast.Constant):
                    routes.add(f"GET {value.value!s}")
    return routes


def test_routes_are_the_ones_the_api_handler_serves() -> None:
    assert set(template_routes()) == handler_routes()


def test_every_route_is_authorized_by_auth_type() -> None:
    auth = parameter("AuthType")
    assert auth["Default"] == "IAM"
    assert sorted(auth["AllowedValues"]) == ["IAM", "JWT", "NONE"]
    for key, route in template_routes().items():
        assert route["AuthorizationType"] == {
            "Fn::If": ["UseIamAuth", "AWS_IAM", {"Fn::If": ["UseJwtAuth", "JWT", "NONE"]}]
        }, key
        assert route["AuthorizerId"] == {
            "Fn::If": ["UseJwtAuth", ref("HttpApiJwtAuthorizer"), ref("AWS::NoValue")]
        }, key
        assert route["Target"] == {"Fn::Sub": "integrations/${HttpApiIntegration}"}, key


def test_cors_is_off_unless_origins_are_given() -> None:
    assert parameter("CorsAllowOrigins")["Default"] == ""
    cors = template()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["Fn::If"][0] == "HasCors"
    assert cors["Fn::If"][2] == ref("AWS::NoValue")


# --- Event files ----------------------------------------------------------------------------

EVENT_FILES = sorted(path.name for path in EVENTS.glob("*.json"))
HTTP_EVENT_FILES = [name for name in EVENT_FILES if name.startswith("api_")]


def load_event(name: str) -> dict[str, Any]:
    data = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_file_is_a_json_object(name: str) -> None:
    load_event(name)


def test_the_documented_events_exist() -> None:
    assert {"api_create_job.json", "api_get_job.json", "api_list_jobs.json", "api_stats.json",
            "api_health.json", "scheduled_tick.json", "kick.json"} <= set(EVENT_FILES)


def test_kick_event_is_what_the_api_sends() -> None:
    from jobworker.aws.kick import KICK_EVENT

    assert load_event("kick.json") == KICK_EVENT


@pytest.mark.parametrize("name", HTTP_EVENT_FILES)
def test_http_event_has_the_payload_v2_shape(name: str) -> None:
    event = load_event(name)
    context = event["requestContext"]
    method, route = event["routeKey"].split(" ", 1)
    assert event["version"] == "2.0"
    assert event["routeKey"] in template_routes()
    assert context["routeKey"] == event["routeKey"]
    assert context["http"]["method"] == method
    assert context["http"]["path"] == event["rawPath"]
    assert context["http"]["sourceIp"]
    assert context["requestId"]
    assert event["isBase64Encoded"] is False
    assert all(header == header.lower() for header in event["headers"])

    path = route
    for key, value in event.get("pathParameters", {}).items():
        path = path.replace("{" + key + "}", value)
    assert path == event["rawPath"]
    assert dict(parse_qsl(event["rawQueryString"])) == event.get("queryStringParameters", {})
    if "body" in event:
        assert event["headers"]["content-type"] == "application/json"
        json.loads(event["body"])


def test_create_event_asks_for_a_small_valid_route_job() -> None:
    from jobworker.routes.models import GenerateRoutesRequest

    request = GenerateRoutesRequest.model_validate_json(load_event("api_create_job.json")["body"])
    assert len(request.location_group.locations) == 3
    assert (request.settings.vehicles, request.settings.vehicle_capacity) == (2, 10)
