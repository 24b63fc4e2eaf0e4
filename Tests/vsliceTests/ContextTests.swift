import Foundation
import Testing

/// The context steps (`--analyze`, `--reduce`, `--context-frames`) with the small programs in
/// Tests/Processors/context: an analyzer that writes each kept frame's luma sum, a reducer that turns them into the
/// whole video's mean luma (mod 40), and a processor whose frames depend on that result and on the mean of the
/// context frames it gets first. Judged with ffmpeg against the same programs run once over the whole video.
@Suite("context across segments: analyze per segment, reduce once, process per segment")
struct ContextTests {
    static let programs = Paths.packageRoot.appendingPathComponent("Tests/Processors/context").path
    static let contextFrames = "0-4,30-32"
    /// Source frames `contextFrames` names, as an ffmpeg select expression.
    static let selectContext = "between(n\\,0\\,4)+between(n\\,30\\,32)"

    /// The three programs, each copied into a folder of its own (so an edit to one changes only its own files).
    struct Setup {
        let dir: URL
        let src: String
        var analyzer: String { dir.appendingPathComponent("a/analyze.py").path }
        var reducer: String { dir.appendingPathComponent("r/reduce.py").path }
        var processor: String { dir.appendingPathComponent("p/proc.py").path }
        var analyzeLog: String { dir.appendingPathComponent("logs/analyze.log").path }
        var reduceLog: String { dir.appendingPathComponent("logs/reduce.log").path }
        var dump: String { dir.appendingPathComponent("dump").path }

        init(_ tag: String, seconds: Int = 6) throws {
            dir = try Paths.scratch(tag)
            src = dir.appendingPathComponent("src.mp4").path
            try makeClip(src, seconds: seconds)
            let fm = FileManager.default
            for (sub, name) in [("a", "analyze.py"), ("r", "reduce.py"), ("p", "proc.py")] {
                try fm.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
                try fm.copyItem(atPath: "\(ContextTests.programs)/\(name)", toPath: dir.appendingPathComponent("\(sub)/\(name)").path)
            }
            try fm.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dump, withIntermediateDirectories: true)
        }

        func args(_ out: String, jobs: Int = 2, reduce: Bool = true, frames: Bool = true) -> [String] {
            ["transcode", src, "-o", out, "--split", "frames", "--segment-frames", "25", "--overlap", "2,2", "--min-split-seconds", "0",
             "--codec-opt", "qp=0", "--jobs", "\(jobs)", "-q",
             "--analyze", "\(Processors.python) \(analyzer)",
             "--process", "\(Processors.python) \(processor)"]
                + (reduce ? ["--reduce", "\(Processors.python) \(reducer)"] : [])
                + (frames ? ["--context-frames", ContextTests.contextFrames] : [])
        }

        var environment: [String: String] { ["VSLICE_TEST_DUMP": dump, "VSLICE_TEST_REDUCE_LOG": reduceLog, "VSLICE_TEST_ANALYZE_LOG": analyzeLog] }

        /// The lines of a log, one per run of its program.
        func runs(_ log: String) -> [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        func clearLogs() throws {
            for log in [analyzeLog, reduceLog] { try? FileManager.default.removeItem(atPath: log) }
        }

        /// The programs run once over the whole video by the ffmpeg CLI: the analyzer on every frame, the reducer on
        /// its one artifact, the processor on the context frames followed by every frame; the frames it puts out
        /// for the video (framemd5), the context frames' share dropped.
        func onePass() throws -> [String] {
            let art = dir.appendingPathComponent("whole.art").path, ctx = dir.appendingPathComponent("whole.ctx").path
            let py = Processors.python
            let lead = try FFmpegOracle.frameMD5s(src, extra: ["-vf", "select='\(ContextTests.selectContext)'"]).count
            let script = """
                set -e
                ffmpeg -nostdin -v error -i '\(src)' -f yuv4mpegpipe - | \(py) '\(analyzer)' > '\(art)'
                \(py) '\(reducer)' '\(art)' > '\(ctx)'
                ffmpeg -nostdin -v error -i '\(src)' -filter_complex "[0:v]split[a][b];[a]select='\(ContextTests.selectContext)',setpts=N/(25*TB)[c];[b]setpts=N/(25*TB)[w];[c][w]concat=n=2:v=1[o]" \
                  -map '[o]' -fps_mode passthrough -f yuv4mpegpipe - \
                  | VSLICE_CONTEXT='\(ctx)' VSLICE_CONTEXT_FRAMES=\(lead) VSLICE_SEGMENT_ARTIFACT='\(art)' \(py) '\(processor)' \
                  | ffmpeg -nostdin -v error -f yuv4mpegpipe -i - -fps_mode passthrough -f framemd5 -
                """
            let r = try Proc.run("/bin/sh", ["-c", script])
            guard r.status == 0 else { throw OracleError("one pass failed: \(r.stderr)") }
            let hashes = r.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }
                .compactMap { $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } }
            return Array(hashes.dropFirst(lead))
        }
    }

    @Test("the processor gets the reduced result and the context frames (framemd5 of what it received); the output equals the programs run once over the whole video")
    func wholeVideo() throws {
        let s = try Setup("ctx-whole")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let out = s.dir.appendingPathComponent("out.mp4").path
        let r = try vslice(s.args(out) + ["--keep-temp"], environment: s.environment)
        #expect(r.status == 0, "\(r.stderr)")
        let mine = try FFmpegOracle.frameMD5s(out)
        let reference = try s.onePass()
        #expect(mine.count == 150 && mine == reference, "\(mine.count) frames vs \(reference.count)")
        // Every segment's processor received the context frames first: the source's own frames, as ffmpeg decodes them.
        let context = try FFmpegOracle.frameMD5s(s.src, extra: ["-vf", "select='\(Self.selectContext)'"])
        #expect(context.count == 8)
        for segment in 0..<6 {
            let got = try FFmpegOracle.frameMD5s("\(s.dump)/lead-\(segment).y4m")
            #expect(got == context, "segment \(segment)")
        }
        // One analysis per segment, one reduce, each artifact in the work folder as the job store recorded it.
        #expect(s.runs(s.analyzeLog).sorted() == (0..<6).map(String.init), "\(s.runs(s.analyzeLog))")
        #expect(s.runs(s.reduceLog) == ["reduce"])
        let status = try vslice(["status", "--json", try taskId(out)])
        let detail = try jsonObject(status.stdout)
        let analyses = detail["analyses"] as? [[String: Any]] ?? []
        #expect(analyses.count == 6 && analyses.allSatisfy { ($0["status"] as? String) == "done" }, "\(analyses)")
        let events = (detail["events"] as? [[String: Any]] ?? []).compactMap { $0["node"] as? String }
        #expect(events.contains("analyze") && events.contains("reduce"), "\(events)")
        // Without the context frames the frames differ: the test can tell.
        let plain = s.dir.appendingPathComponent("plain.mp4").path
        let p = try vslice(s.args(plain, frames: false), environment: s.environment)
        #expect(p.status == 0, "\(p.stderr)")
        #expect(try FFmpegOracle.frameMD5s(plain) != mine)
    }

    @Test("kill -9 after half the analyses: the same command analyses only the rest; after the reduce: neither runs again")
    func resume() throws {
        let s = try Setup("ctx-resume")
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let out = s.dir.appendingPathComponent("out.mp4").path
        let args = s.args(out, jobs: 1)
        let killed = try vslice(args, environment: s.environment.merging(["VSLICE_FAULT": "analysis-done:3"]) { $1 })
        #expect(killed.signaled, "\(killed.status) \(killed.stderr)")
        let first = s.runs(s.analyzeLog)
        #expect(first.count == 3, "\(first)")
        try s.clearLogs()
        let again = try vslice(args, environment: s.environment)
        #expect(again.status == 0, "\(again.stderr)")
        let second = s.runs(s.analyzeLog)
        #expect(Set(first).isDisjoint(with: second) && (first + second).sorted() == (0..<6).map(String.init), "\(first) then \(second)")
        #expect(s.runs(s.reduceLog) == ["reduce"])
        let reference = try s.onePass()
        #expect(try FFmpegOracle.frameMD5s(out) == reference)

        // Killed right after the reduce's commit: a resume runs neither the analyses nor the reduce.
        let out2 = s.dir.appendingPathComponent("out2.mp4").path
        try s.clearLogs()
        let afterReduce = try vslice(s.args(out2, jobs: 1), environment: s.environment.merging(["VSLICE_FAULT": "reduce-done"]) { $1 })
        #expect(afterReduce.signaled, "\(afterReduce.status) \(afterReduce.stderr)")
        #expect(s.runs(s.analyzeLog).count == 6 && s.runs(s.reduceLog) == ["reduce"])
        try s.clearLogs()
        let resumed = try vslice(s.args(out2, jobs: 1), environment: s.environment)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(s.runs(s.analyzeLog).isEmpty && s.runs(s.reduceLog).isEmpty, "\(s.runs(s.analyzeLog)) \(s.runs(s.reduceLog))")
        #expect(try FFmpegOracle.frameMD5s(out2) == reference)
    }

    @Test("an edited analyzer or reducer refuses the resume (exit 5), as an edited processor does", arguments: ["analyzer", "reducer"])
    func edited(_ which: String) throws {
        let s = try Setup("ctx-edit-\(which)", seconds: 4)
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let out = s.dir.appendingPathComponent("out.mp4").path
        let fault = which == "analyzer" ? "analysis-done:2" : "reduce-done"
        let killed = try vslice(s.args(out, jobs: 1), environment: s.environment.merging(["VSLICE_FAULT": fault]) { $1 })
        #expect(killed.signaled, "\(killed.status) \(killed.stderr)")
        let script = which == "analyzer" ? s.analyzer : s.reducer
        try (String(contentsOfFile: script, encoding: .utf8) + "# edited\n").write(toFile: script, atomically: true, encoding: .utf8)
        let edited = try vslice(s.args(out, jobs: 1), environment: s.environment)
        #expect(edited.status == 5, "\(edited.stderr)")
        let option = which == "analyzer" ? "--analyze" : "--reduce"
        #expect(edited.stderr.contains("--fresh") && edited.stderr.contains("\(option): the file \(script) changed"), "\(edited.stderr)")
    }

    @Test("vslice plan shows the context steps; wrong combinations are refused before any work (exit 2)")
    func planAndRefusals() throws {
        let s = try Setup("ctx-plan", seconds: 2)
        defer { try? FileManager.default.removeItem(at: s.dir) }
        let plan = try vslice(["plan", s.src, "--split", "frames", "--segment-frames", "25", "--min-split-seconds", "0",
                               "--analyze", "\(Processors.python) \(s.analyzer)", "--reduce", "\(Processors.python) \(s.reducer)",
                               "--process", "\(Processors.python) \(s.processor)", "--context-frames", "0-4,30-32"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("analyze (2 elements") && plan.stdout.contains("reduce (once") && plan.stdout.contains("context frames: 0-4,30-32 (8 frames"),
                "\(plan.stdout)")
        let out = s.dir.appendingPathComponent("x.mp4").path
        for bad in [["--reduce", "cat"], ["--context-frames", "0-4"], ["--analyze", "cat", "--vf", "hflip"],
                    ["--process", "cat", "--context-frames", "4-2"], ["--process", "cat", "--context-frames", "0-500"]] {
            let r = try vslice(["transcode", s.src, "-o", out] + bad)
            #expect(r.status == 2, "\(bad): \(r.status) \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// The task that wrote `out` (the newest for it).
    func taskId(_ out: String) throws -> String {
        let list = try vslice(["status", "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
        guard let id = rows.first(where: { ($0["output"] as? String) == out })?["id"] as? String else {
            throw OracleError("no task for \(out) in \(list.stdout.prefix(400))")
        }
        return id
    }
}
