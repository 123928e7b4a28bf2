-- runbook.storage and runbook.userbackup, the parts that need no server: sizes, spawner kinds, what
-- the plan says a deletion does to a claim, matching claims to users, and saving/reading records.
local host = require "runbook.host"
local json = require "runbook.json"
local storage = require "runbook.storage"
local userbackup = require "runbook.userbackup"

-- Kubernetes quantities (binary and decimal suffixes, exponents) and how they are shown.
is(storage.quantity("20Gi"), 20 * 1024 ^ 3 // 1, "20Gi")
is(math.type(storage.quantity("20Gi")), "integer", "  an integer, so plans keep their type")
is(storage.quantity("500M"), 500000000, "500M (decimal)")
is(storage.quantity("1.5Ti"), 1649267441664, "1.5Ti")
is(storage.quantity("1e9"), 1000000000, "1e9")
is(storage.quantity("100"), 100, "a bare number is bytes")
is(storage.quantity("10Gx"), nil, "an unknown suffix is not a size")
is(storage.quantity(nil), nil, "nothing is not a size")
is(storage.human_bytes(20 * 1024 ^ 3), "20 GiB", "20 GiB")
is(storage.human_bytes(2.1 * 1024 ^ 4), "2.1 TiB", "2.1 TiB")
is(storage.human_bytes(0), "0 B", "0 B")

-- Which spawners delete storage with a user.
is(storage.spawner_kind("kubespawner.spawner.KubeSpawner"), "kubernetes", "KubeSpawner: look for claims")
is(storage.spawner_kind("mysite.kubespawner_ext.SiteKubeSpawner"), "kubernetes", "  and classes of its family")
is(storage.spawner_kind("jupyterhub.spawner.SimpleLocalProcessSpawner"), "local", "a local spawner keeps nothing")
is(storage.spawner_kind("dockerspawner.DockerSpawner"), nil, "another spawner: cannot tell")
is(storage.spawner_kind(nil), nil, "no class (no read:hub): cannot tell")

-- What a deletion does to a claim, in the plan's words.
local claim = { name = "claim-alice", namespace = "jhub", uid = "u1", server = "", phase = "Bound", volume = "pvc-1",
                bytes = 10 * 1024 * 1024 * 1024, reclaim_policy = "Delete" }
is(storage.describe(claim, "retain"), "claim-alice (10 GiB, volume pvc-1, reclaim Delete): kept (volume set to Retain first)",
  "retain, Delete volume")
is(storage.describe(claim, "delete"), "claim-alice (10 GiB, volume pvc-1, reclaim Delete): DELETED with the user", "delete")
local retained = { name = "claim-b", server = "lab", phase = "Bound", volume = "pvc-2", bytes = 1024, reclaim_policy = "Retain" }
like(storage.describe(retained, "delete"), "claim deleted, volume kept", "delete, but the volume's policy is Retain")
like(storage.describe(retained), "of server 'lab'", "a named server's claim says so")
local pending = { name = "claim-c", server = "", phase = "Pending", bytes = 0 }
like(storage.describe(pending, "retain"), "no volume bound%): no data to keep", "a claim with no volume")
local n, bytes = storage.at_risk({ claim, retained, pending })
is(n .. " " .. bytes, "1 " .. math.tointeger(10 * 1024 ^ 3), "at_risk: only the Delete volume's data goes with its claim")

-- The claim made again for a kept volume: the old claim's identity, the volume's class and size.
local old = { metadata = { name = "claim-jos-c3-a9", namespace = "jhub", uid = "old",
                           labels = { component = "singleuser-storage" },
                           annotations = { ["hub.jupyter.org/username"] = "josé", ["pv.kubernetes.io/bind-completed"] = "yes" } },
              spec = { accessModes = { "ReadWriteOnce" } } }
local pv = { metadata = { name = "pvc-9" }, spec = { storageClassName = "standard", accessModes = { "ReadWriteOnce" },
                                                     capacity = { storage = "10Gi" }, claimRef = { uid = "old" } } }
local made = storage.claim_for(old, pv)
is(made.spec.volumeName, "pvc-9", "claim_for: bound to the kept volume by name")
is(made.spec.resources.requests.storage, "10Gi", "  asking for exactly its capacity")
is(made.metadata.annotations["hub.jupyter.org/username"], "josé", "  with the user's annotation")
is(made.metadata.annotations["pv.kubernetes.io/bind-completed"], nil, "  without what the controller wrote")
is(storage.volume_state(pv, "old"), "released", "volume_state: still names the deleted claim")
is(storage.volume_state({ spec = {} }, "old"), "available", "  no claimRef: available")
local state, holder = storage.volume_state({ spec = { claimRef = { uid = "x", namespace = "n", name = "c" } } }, "old")
is(state .. " " .. holder, "bound n/c", "  another claim: bound, and to whom")

-- Records of deleted users: saved once, found again, read back against the journal's checksum.
local dir = (os.getenv("TMPDIR") or "/tmp") .. "/runbook-userbackup." .. host.getpid() .. "/run.backup"
is(userbackup.file_name("a#b"), "users/user-a%23b.json", "file names: percent-encoded")
like(userbackup.file_name(string.rep("é", 100)), "^users/user%-sha256%-%x+%.json$", "  too long: the name's SHA-256")
local saved = assert(userbackup.save(dir, { user = { name = "mary ann", admin = false, groups = json.array() } }))
is(host.stat(dir .. "/" .. saved.file).mode, tonumber("600", 8), "a record is mode 0600")
local again = assert(userbackup.save(dir, { user = { name = "mary ann", admin = true } }))
ok(again.earlier and again.sha256 == saved.sha256, "saving again keeps the first record (taken while the user existed)")
is(userbackup.find(dir, "nobody"), nil, "find: no record")
local journal_path = dir:gsub("%.backup$", ".journal")
local plan = { format = "runbook-plan/1", runbook = "prune-dormant", runbook_source = "built-in", runbook_sha256 = "x",
               created = "2026-12-03T00:00:00Z", created_unix = 1, target = "h", params = { hub = "http://h" },
               actions = { { id = 1, kind = "hub.delete_user", target = "mary ann", reason = "r", args = {} },
                           { id = 2, kind = "hub.delete_user", target = "gone", reason = "r", args = {} } } }
local function journal_text(sum)
  return json.encode_compact({ type = "plan", format = "runbook-journal/1", plan = plan }) .. "\n" ..
    json.encode_compact({ type = "end", id = 1, outcome = "done", data = { backup = { file = saved.file, sha256 = sum } } }) .. "\n" ..
    json.encode_compact({ type = "end", id = 2, outcome = "done", data = { why_no_backup = "it was gone" } }) .. "\n"
end
assert(host.write_file(journal_path, journal_text(saved.sha256)))
local run = assert(userbackup.read_run(journal_path))
is(#run.users .. " " .. run.users[1].record.user.name, "1 mary ann", "read_run: the record, checked")
is(run.missing[1].name .. ": " .. run.missing[1].why, "gone: it was gone", "  and who has none, with why")
is(assert(userbackup.read_run(dir)).journal, journal_path, "  from the backup directory too")
assert(host.write_file(journal_path, journal_text(string.rep("0", 64))))
run = assert(userbackup.read_run(journal_path))
like(run.missing[1].why, "does not match its checksum", "a record that changed is refused")
local none, err = userbackup.read_run("/nonexistent/x.journal")
ok(none == nil and err:find("cannot read", 1, true) ~= nil, "a journal that is not there: a message")
none, err = userbackup.read_run(dir .. "/users")
ok(none == nil and err:find("neither a journal", 1, true) ~= nil, "something else: a message")
done_testing()
