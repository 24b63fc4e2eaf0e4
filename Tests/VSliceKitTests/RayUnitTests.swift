import Foundation
import Testing
@testable import VSliceKit

/// `--executor ray`'s pure parts, without Ray: what a worker's record says under Ray, the queue's answer as the
/// tracker's sightings, Ray's words picked from its log, the options' checks, tasks stored before Ray.
@Suite("ray executor, unit")
struct RayUnitTests {
    @Test("a worker under a Ray actor records engine ray, its actor, attempt and node — even inside a Slurm allocation")
    func engineFromEnvironment() {
        let env = ["VSLICE_RAY_NODE_ID": "ab12", "VSLICE_RAY_ACTOR": "worker-3", "VSLICE_RAY_ATTEMPT": "0f0f",
                   "SLURM_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "2"]
        let e = SegmentTraceRecord.Engine.from(environment: env)
        #expect(e == SegmentTraceRecord.Engine(kind: "ray", job: "worker-3", arrayIndex: nil, elementJob: "0f0f", node: "ab12"))
        #expect(SegmentTraceRecord.Engine.from(environment: ["SLURM_JOB_ID": "77"])?.kind == "slurm")
        #expect(SegmentWorker.threads(environment: ["VSLICE_RAY_CPUS": "3", "SLURM_CPUS_PER_TASK": "8"]) == 3)
    }

    @Test("the queue's answer: queued indices, running ones with node, attempt and actor")
    func sightings() throws {
        let answer = """
            {"ok": true, "queued": [4, 5], "running": {"2": {"node": "n2id", "ip": "127.0.0.3", "host": "vm", "name": "worker-1",
             "attempt": "a1", "since": 1.0}}, "workers": {}}
            """
        let held = try JSONDecoder().decode(RayHeld.self, from: Data(answer.utf8))
        #expect(held.sightings == [4: ElementSighting(state: .queued), 5: ElementSighting(state: .queued),
                                   2: ElementSighting(state: .running, node: "n2id", job: "a1", arrayJob: "worker-1")])
    }

    @Test("a driver's answer: ok, an error, or Ray's own words when it died without one")
    func answers() {
        let ok = RayDriver.answer(Data(#"{"ok": true, "id": "ray-1"}"#.utf8), stderr: "", status: 0)
        #expect((try? ok.get()) != nil)
        let refused = RayDriver.answer(Data(#"{"ok": false, "error": "connect to 127.0.0.2:1: Connection refused"}"#.utf8), stderr: "", status: 1)
        #expect(refused.failureReason == "connect to 127.0.0.2:1: Connection refused")
        let log = """
            [2026-12-06 22:40:59,220 W 13572 13572] rpc_client.h:153: Failed to connect to GCS at address 127.0.0.2:6999 within 2 seconds.
            [2026-12-06 22:41:03,226 E 13572 13574] rpc_client.h:204: Failed to connect to GCS within 2 seconds. GCS may have been killed.
            """
        let died = RayDriver.answer(Data(), stderr: log, status: 134)
        #expect(died.failureReason == "Failed to connect to GCS at address 127.0.0.2:6999 within 2 seconds.")
        #expect(RayDriver.answer(Data(), stderr: "", status: 1).failureReason == "the driver exited 1 without an answer")
        #expect(RayDriver.setupProblem(data: #"{"ok": false, "kind": "setup", "error": "No module named 'ray'"}"#))
        #expect(!RayDriver.setupProblem(data: #"{"ok": false, "error": "connect to x: refused"}"#))
    }

    @Test("--executor ray needs an address; --ray-address needs --executor ray; a task stored before Ray decodes")
    func options() throws {
        let request = TranscodeRequest(input: "/in.mp4", output: "/tmp/out.mp4", settings: TranscodeSettings())
        #expect(throws: VSliceError.self) { try ExecutorConfig(kind: .ray).check(request: request, detach: false) }
        #expect(throws: VSliceError.self) { try ExecutorConfig(kind: .slurm, rayAddress: "h:1").check(request: request, detach: false) }
        let old = try JSONDecoder().decode(ExecutorConfig.self, from: Data(#"{"kind": "slurm", "slurmArgs": []}"#.utf8))
        #expect(old == ExecutorConfig(kind: .slurm))
        let ray = ExecutorConfig(kind: .ray, rayAddress: "10.0.0.5:6379")
        #expect(try JSONDecoder().decode(ExecutorConfig.self, from: JSONEncoder().encode(ray)) == ray)
        #expect(RayEngine.namespace(task: TaskID(rawValue: "abc")) == "vslice-abc")
    }
}
