// Validates every object of DIR/*.yaml (and DIR/*/*.yaml) against the Kubernetes API schemas of the npm package
// kubernetes-models (and the Prometheus Operator's for ServiceMonitor), then checks what the
// deployment must guarantee: a GPU, gRPC health probes, a termination grace period longer than the
// drain, Services and a PodDisruptionBudget that select the server pods, a headless Service.
// CMake copies this file next to the node_modules that ops.k8s_npm_install fills.
//   node validate_manifests.mjs deploy/k8s        (exit 0 = valid; failures are listed)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node validate_manifests.mjs DIR");
  process.exit(2);
}
const failures = [];
const fail = (message) => failures.push(message);

// The model class of apiVersion/kind, or null.
async function modelOf(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const module = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}`
    : group === "" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  try {
    return (await import(module))[kind] ?? null;
  } catch (error) {
    return null;
  }
}

// The validator must be able to fail: a container port that is a string is not a Deployment.
{
  const Deployment = await modelOf("apps/v1", "Deployment");
  let rejected = false;
  try {
    new Deployment({
      metadata: { name: "broken" },
      spec: {
        selector: { matchLabels: { a: "b" } },
        template: {
          metadata: { labels: { a: "b" } },
          spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: "grpc" }] }] },
        },
      },
    }).validate();
  } catch (error) {
    rejected = true;
  }
  if (!rejected) fail("self-check: kubernetes-models accepted a Deployment with a string port");
}

// DIR/*.yaml and the same in its subfolders (operator/: objects of the Prometheus Operator, applied
// apart), as paths relative to DIR.
function yamlFiles(folder, prefix = "") {
  const found = [];
  for (const entry of readdirSync(join(folder, prefix), { withFileTypes: true })) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) found.push(...yamlFiles(folder, path));
    else if (entry.name.endsWith(".yaml")) found.push(path);
  }
  return found.sort();
}

const objects = [];
const files = yamlFiles(dir);
if (files.length === 0) fail(`no .yaml files in ${dir}`);
for (const file of files) {
  let documents;
  try {
    documents = yaml.loadAll(readFileSync(join(dir, file), "utf8"));
  } catch (error) {
    fail(`${file}: YAML: ${error.message}`);
    continue;
  }
  for (const document of documents) {
    if (document == null) continue;
    const name = `${file}: ${document.kind}/${document.metadata?.name}`;
    const Model = await modelOf(document.apiVersion ?? "", document.kind ?? "");
    if (Model == null) {
      fail(`${name}: no schema for apiVersion ${document.apiVersion} kind ${document.kind}`);
      continue;
    }
    try {
      new Model(document).validate();
      objects.push(document);
      console.log(`valid: ${name} (${document.apiVersion})`);
    } catch (error) {
      fail(`${name}: ${error.message}`);
    }
  }
}

// Configuration files carried in ConfigMaps (the Envoy bootstrap) must at least parse.
for (const map of objects.filter((o) => o.kind === "ConfigMap")) {
  for (const [key, text] of Object.entries(map.data ?? {})) {
    if (!/\.ya?ml$/.test(key)) continue;
    try {
      yaml.load(text);
    } catch (error) {
      fail(`ConfigMap ${map.metadata.name} ${key}: YAML: ${error.message}`);
    }
  }
}

// ---- what the deployment must guarantee ----
const ofKind = (kind) => objects.filter((o) => o.kind === kind);
const selects = (selector, labels) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value);
const server = ofKind("Deployment").find((d) =>
  d.spec.template.spec.containers.some((c) => c.args?.some((a) => a.startsWith("--model"))));
if (!server) {
  fail("no Deployment runs speechllm-server (a container with --model)");
} else {
  const labels = server.spec.template.metadata.labels;
  const pod = server.spec.template.spec;
  const container = pod.containers.find((c) => c.args?.some((a) => a.startsWith("--model")));
  const flag = (name, fallback) => {
    const arg = container.args.find((a) => a.startsWith(`--${name}=`));
    return arg ? Number(arg.split("=")[1]) : fallback;
  };
  if (!container.resources?.limits?.["nvidia.com/gpu"]) fail("the server requests no nvidia.com/gpu");
  const ports = new Set((container.ports ?? []).flatMap((p) => [p.name, p.containerPort]));
  for (const probe of ["readinessProbe", "livenessProbe"]) {
    const grpc = container[probe]?.grpc;
    if (!grpc) fail(`the server's ${probe} is not a gRPC health probe`);
    else if (!ports.has(grpc.port)) fail(`the server's ${probe} uses undeclared port ${grpc.port}`);
  }
  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStopSeconds = preStop.length > 0 && preStop[0].endsWith("sleep") ? Number(preStop[1]) : 0;
  const drainSeconds = flag("drain_grace_s", 30);
  // After the grace period the server ends open streams, waits 5 s for them and 5 s for gRPC.
  const needed = preStopSeconds + drainSeconds + 10;
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  console.log(`termination grace ${grace} s; preStop ${preStopSeconds} s + drain ${drainSeconds} s` +
              ` + 10 s = ${needed} s`);
  if (grace <= needed) fail(`terminationGracePeriodSeconds ${grace} <= ${needed} s of drain`);
  for (const service of ofKind("Service")) {
    if (service.spec.selector?.["app.kubernetes.io/component"] === "server" &&
        !selects(service.spec.selector, labels)) {
      fail(`Service ${service.metadata.name} does not select the server pods`);
    }
  }
  if (!ofKind("Service").some((s) => s.spec.clusterIP === "None" && selects(s.spec.selector, labels))) {
    fail("no headless Service selects the server pods (per-call balancing)");
  }
  if (!ofKind("PodDisruptionBudget").some((p) => selects(p.spec.selector.matchLabels, labels))) {
    fail("no PodDisruptionBudget selects the server pods");
  }
}
for (const monitor of ofKind("ServiceMonitor")) {
  const matched = ofKind("Service").filter((s) => selects(monitor.spec.selector.matchLabels,
                                                          s.metadata.labels));
  if (matched.length !== 1) {
    fail(`ServiceMonitor ${monitor.metadata.name} selects ${matched.length} Services, not 1`);
  } else if (!matched[0].spec.ports.some((p) => monitor.spec.endpoints.every((e) => e.port === p.name))) {
    fail(`ServiceMonitor ${monitor.metadata.name} names a port its Service lacks`);
  }
}
if (ofKind("ServiceMonitor").length === 0) fail("no ServiceMonitor");

if (failures.length > 0) {
  console.error(`${failures.length} problem(s):\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(`${objects.length} objects in ${files.length} files valid`);
