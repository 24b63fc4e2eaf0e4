import Foundation
import Testing

/// `vslice report`: a short transcode with `--jobs 2` (its plan made from the element cost measured before any
/// work), its prediction for two workers against the run's wall time, its fixed costs in the ledger.
@Suite("vslice report: the scaling model against a real run")
struct ReportTests {
    /// The prediction ÷ the measured wall time is at most this: a model that summed the two workers' work
    /// (twice the wall time) fails. There is no lower bound: the model replays the elements' CPU time, and on a
    /// machine other work keeps busy — the other tests, run in parallel — the run's wall time grows (2.7 times
    /// seen in a clean-clone CI beside a build) while its elements' CPU time hardly does. How close the model
    /// comes on an idle machine is the bench's to measure (within 10 %: docs/performance.md).
    static let ratioAtMost = 1.35

    @Test("a 40 s clip with --jobs 2: report --json predicts the run's wall time for two workers; the plan's element cost was measured")
    func predictsTheRun() throws {
        let dir = try Paths.scratch("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("in.mp4").path
        try makeClip(src, size: "640x360", seconds: 40)
        let out = dir.appendingPathComponent("out.mp4").path
        // The element cost measured, not given: the plan says so.
        let measured = ["VSLICE_ELEMENT_COST": ""]
        let plan = try vslice(["plan", src, "--jobs", "2", "--preset", "veryfast"], environment: measured)
        #expect(plan.stdout.contains("measured before any work"), "\(plan.stdout)")

        let t0 = Date()
        let run = try vslice(["transcode", src, "-o", out, "--jobs", "2", "--preset", "veryfast", "--json"], environment: measured)
        let wall = Date().timeIntervalSince(t0)
        #expect(run.status == 0, "\(run.stderr)")
        let task = try #require(try lastEvent(run.stdout, "task_done")["task"] as? String)
        let segments = try #require(try lastEvent(run.stdout, "task_done")["segments"] as? Int)
        #expect(segments >= 2)

        let r = try vslice(["report", task, "--workers", "1,2,64", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let points = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(points.compactMap { $0["workers"] as? Int } == [1, 2, 64])
        let walls = points.compactMap { $0["wall_seconds"] as? Double }
        let serial = try #require(points[1]["serial_seconds"] as? Double)
        #expect(walls.count == 3 && serial > 0 && serial < walls[1])
        // Two workers: faster than one, at most twice, and about the run's own wall time.
        let speedup = try #require(points[1]["speedup"] as? Double)
        #expect(walls[0] > walls[1] && speedup > 1 && speedup <= 2, "\(walls)")
        #expect(walls[1] / wall <= Self.ratioAtMost, "predicted \(walls[1]) s for 2 workers, the run took \(wall) s")
        // Past the elements' count more workers do not help.
        #expect(walls[2] <= walls[1] && walls[2] > serial)

        // The text: the run checked against its own prediction; every element's start-up and flush recorded.
        let text = try vslice(["report", String(task.prefix(8))]).stdout
        #expect(text.contains("on 2 workers; predicted for 2:"), "\(text)")
        let status = try jsonObject(try vslice(["status", task, "--json"]).stdout)
        let traces = try #require(status["traces"] as? [[String: Any]])
        let elements = traces.filter { ($0["segment_id"] as? String) != nil && $0["status"] as? String == "done" }
        #expect(elements.count >= segments)
        #expect(elements.allSatisfy { ($0["startup_seconds"] as? Double).map { $0 > 0 && $0 < 10 } ?? false }, "\(elements)")
        #expect(elements.allSatisfy { $0["flush_seconds"] as? Double != nil })
        // One worker does every element's recorded work after the other: not less than their CPU time together.
        let cpu = elements.compactMap { $0["cpu_seconds"] as? Double }.reduce(0, +)
        #expect(cpu > 0 && walls[0] >= 0.95 * cpu, "predicted \(walls[0]) s for 1 worker, the elements' CPU time is \(cpu) s")

        // Bad --workers, an unknown task: usage errors.
        #expect(try vslice(["report", task, "--workers", "0,2"]).status == 2)
        #expect(try vslice(["report", "ffffffff"]).status == 2)
    }
}
