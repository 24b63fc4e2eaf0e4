import Foundation
import Testing

/// `vslice plan` prints the plan that `transcode` makes for the same options: the same checks, the same
/// inspection of the source and the same planning path. Judged against the work order (`task.json`) the
/// transcode wrote into its work folder (kept with `--keep-temp`). The element's cost is given
/// (`VSLICE_ELEMENT_COST`) so that both plans do not depend on the machine's noise.
@Suite("plan: the same plan as the transcode's")
struct PlanParityTests {
    static let cost = ["VSLICE_ELEMENT_COST": "0.01,0.0001,0.05"]

    /// The plan `vslice plan … --json` prints, without the audio it adds.
    static func printedPlan(_ input: String, _ options: [String]) throws -> [String: Any] {
        let r = try vslice(["plan", input, "--json"] + options, environment: cost)
        #expect(r.status == 0, "\(r.stderr)")
        var plan = try jsonObject(r.stdout)
        // What `plan` adds beside the plan itself: the audio tracks, the wall-time estimate.
        #expect(plan["estimate"] is [String: Any], "\(r.stdout.prefix(300))")
        plan["audio"] = nil
        plan["estimate"] = nil
        return plan
    }

    /// The plan in the work order of a finished transcode with the same options.
    static func transcodedPlan(_ input: String, _ options: [String], in dir: URL) throws -> [String: Any] {
        let out = dir.appendingPathComponent("out.mp4").path
        let r = try vslice(["transcode", input, "-o", out, "--keep-temp", "-q"] + options, environment: cost)
        #expect(r.status == 0, "\(r.stderr)")
        let work = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .first { $0.hasPrefix(".out.mp4.vslice-") && !$0.hasSuffix(".part") })
        let order = try jsonObject(String(contentsOfFile: dir.appendingPathComponent(work).appendingPathComponent("task.json").path, encoding: .utf8))
        return snakeCased(try #require(order["plan"] as? [String: Any])) as? [String: Any] ?? [:]
    }

    /// `task.json` names its keys in camelCase, `--json` in snake_case: the same plan either way.
    static func snakeCased(_ value: Any) -> Any {
        if let d = value as? [String: Any] {
            return Dictionary(uniqueKeysWithValues: d.map { key, v in
                (key.reduce(into: "") { out, c in out += c.isUppercase ? "_" + c.lowercased() : String(c) }, snakeCased(v))
            })
        }
        if let a = value as? [Any] { return a.map(snakeCased) }
        return value
    }

    static func expectSame(_ input: String, _ options: [String], tag: String) throws {
        let dir = try Paths.scratch("plan-parity-\(tag)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let printed = try printedPlan(input, options)
        let made = try transcodedPlan(input, options, in: dir)
        let segments = try #require(printed["segments"] as? [[String: Any]])
        #expect(segments.count >= 2, "the case must split, or the comparison says little")
        #expect(NSDictionary(dictionary: printed).isEqual(to: made), "plan --json: \(printed)\n\ntask.json: \(made)")
    }

    @Test("the default balanced plan of an HDR10 source (x265): segments and HDR metadata alike")
    func hdrDefaultPlan() throws {
        let dir = try Paths.scratch("plan-parity-src")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("hdr.mkv").path
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4", "-pix_fmt", "yuv420p10le",
                                  "-c:v", "libx265", "-g", "25", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
                                  "-colorspace", "bt2020nc", "-x265-params",
                                  "log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400",
                                  src])
        let printed = try Self.printedPlan(src, ["--vcodec", "libx265", "--jobs", "4"])
        #expect(printed["hdr"] != nil, "the plan carries the source's HDR10 metadata: \(printed.keys.sorted())")
        try Self.expectSame(src, ["--vcodec", "libx265", "--jobs", "4"], tag: "hdr")
    }

    @Test("a filtered plan cut by time (--vf fps=12)")
    func filteredPlan() throws {
        try Self.expectSame(Paths.fixture("h264_aac.mp4"), ["--vf", "fps=12", "--segment-seconds", "1", "--min-split-seconds", "0"], tag: "vf")
    }

    @Test("a processor's plan with overlap buffers (--process cat --overlap 2,2)")
    func processorPlan() throws {
        try Self.expectSame(Paths.fixture("h264_aac.mp4"), ["--process", "cat", "--process-format", "rgb24", "--overlap", "2,2",
                                                            "--segment-seconds", "1", "--min-split-seconds", "0"], tag: "process")
    }
}
