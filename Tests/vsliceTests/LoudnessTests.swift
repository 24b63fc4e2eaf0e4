import Foundation
import Testing

/// `--loudness`: every audio piece measured in parallel, one gated integral and true peak per track, one linear
/// gain per piece. Judged with ffmpeg's `ebur128` on the output, against ffmpeg's own two-pass `loudnorm`.
@Suite("--loudness: R128 measured per audio piece, reduced once, one gain applied per piece")
struct LoudnessTests {
    static let target = "I=-16:TP=-1.5:LRA=11"

    /// A 12 s clip whose audio is a 440 Hz tone with pink noise (stereo AAC); `stepped`: 6 dB louder from 4 s to 8 s.
    static func clip(_ path: String, stepped: Bool) throws {
        let level = stepped ? ",volume='0.5+0.5*between(t\\,4\\,8)':eval=frame" : ""
        try FidelityMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=12",
                                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
                                  "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.02:seed=7:sample_rate=48000:duration=12",
                                  "-filter_complex", "[1:a][2:a]amix=inputs=2:normalize=0\(level),aformat=channel_layouts=stereo[a]",
                                  "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                                  "-c:a", "aac", "-b:a", "128k", path])
    }

    /// ffmpeg's integrated loudness (LUFS) and true peak (dBTP) of `path`'s first audio track.
    static func integrated(_ path: String) throws -> (i: Double, tp: Double) {
        let r = try Proc.run("ffmpeg", ["-nostdin", "-hide_banner", "-i", path, "-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"])
        let summary = r.stderr.components(separatedBy: "Summary:").last ?? ""
        func value(_ label: String) -> Double? {
            summary.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }
                .flatMap { $0.split(separator: " ").compactMap { Double($0) }.first }
        }
        guard let i = value("I:"), let tp = value("Peak:") else { throw OracleError("no ebur128 summary for \(path): \(r.stderr.suffix(300))") }
        return (i, tp)
    }

    /// ffmpeg's short-term loudness (3 s window) every 100 ms of `path`'s first audio track.
    static func shortTerm(_ path: String, scratch: URL) throws -> [Double] {
        let out = scratch.appendingPathComponent("st-\(UUID().uuidString.prefix(6)).txt").path
        let r = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-af",
                                        "asetnsamples=n=4800:p=0,ebur128=metadata=1,ametadata=print:key=lavfi.r128.S:file=\(out)", "-f", "null", "-"])
        guard r.status == 0 else { throw OracleError("short-term loudness failed: \(r.stderr)") }
        return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
            .filter { $0.hasPrefix("lavfi.r128.S=") }.compactMap { Double($0.dropFirst("lavfi.r128.S=".count)) }
    }

    /// ffmpeg's own two passes: `loudnorm` measuring, then `loudnorm` in linear mode with what it measured (its
    /// output resampled to 48 kHz and encoded as vslice's is).
    /// The last JSON object in ffmpeg's stderr (what `print_format=json` wrote).
    static func printed(_ text: String) throws -> [String: Any] {
        guard let a = text.lastIndex(of: "{"), let b = text[a...].firstIndex(of: "}") else { throw OracleError("no JSON in \(text.suffix(300))") }
        return try jsonObject(String(text[a...b]))
    }

    static func loudnorm(_ source: String, to path: String) throws -> String {
        let first = try Proc.run("ffmpeg", ["-nostdin", "-hide_banner", "-i", source, "-map", "0:a:0",
                                            "-af", "loudnorm=\(target):print_format=json", "-f", "null", "-"])
        let json = try printed(first.stderr)
        func m(_ k: String) -> String { json[k] as? String ?? "" }
        let second = "loudnorm=\(target):measured_I=\(m("input_i")):measured_TP=\(m("input_tp")):measured_LRA=\(m("input_lra"))"
            + ":measured_thresh=\(m("input_thresh")):offset=\(m("target_offset")):linear=true:print_format=json,aresample=48000"
        let r = try Proc.run("ffmpeg", ["-nostdin", "-hide_banner", "-y", "-i", source, "-map", "0:a:0", "-af", second,
                                        "-c:a", "aac", "-b:a", "128k", path])
        guard r.status == 0 else { throw OracleError("loudnorm failed: \(r.stderr.suffix(300))") }
        let said = try printed(r.stderr)
        return said["normalization_type"] as? String ?? "?"
    }

    static func args(_ src: String, _ out: String) -> [String] {
        ["transcode", src, "-o", out, "--audio-piece-seconds", "2", "--loudness", target, "-q"]
    }

    @Test("a steady programme: the output's integrated loudness within 0.5 LU of the target and 0.2 LU of loudnorm's two passes (linear); short-term loudness as loudnorm's across every join")
    func steady() throws {
        let dir = try Paths.scratch("loud-steady")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        try Self.clip(src, stepped: false)
        let r = try vslice(Self.args(src, out))
        #expect(r.status == 0, "\(r.stderr)")
        let reference = dir.appendingPathComponent("loudnorm.m4a").path
        #expect(try Self.loudnorm(src, to: reference) == "linear")
        let mine = try Self.integrated(out), theirs = try Self.integrated(reference)
        #expect(abs(mine.i - -16) <= 0.5 && abs(mine.i - theirs.i) <= 0.2, "vslice \(mine), loudnorm \(theirs)")
        #expect(mine.tp <= -1.5 + 0.3, "\(mine)")
        let a = try Self.shortTerm(out, scratch: dir), b = try Self.shortTerm(reference, scratch: dir)
        let n = min(a.count, b.count)
        #expect(n >= 110)
        // From 3 s on (a full window), every 100 ms: the six pieces' joins (every 2 s) show no step.
        let worst = (30..<n).map { abs(a[$0] - b[$0]) }.max() ?? 99
        #expect(worst <= 0.5, "largest short-term difference \(worst) LU")
    }

    @Test("a programme 6 dB louder in its middle: on target; the ledger keeps each piece's measurement and the track's integral (ffmpeg's own within 0.2 LU); the gain is the same at every join")
    func stepped() throws {
        let dir = try Paths.scratch("loud-step")
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("src.mp4").path, out = dir.appendingPathComponent("out.mp4").path
        try Self.clip(src, stepped: true)
        let r = try vslice(Self.args(src, out) + ["--jobs", "1"], environment: ["VSLICE_FAULT": "analysis-done:3"])
        #expect(r.signaled, "\(r.status) \(r.stderr)")
        let again = try vslice(Self.args(src, out))
        #expect(again.status == 0, "\(again.stderr)")
        let source = try Self.integrated(src), mine = try Self.integrated(out)
        #expect(abs(mine.i - -16) <= 0.5, "\(mine)")
        // The job store: six measured pieces, each measured once (three before the kill, three after), and the integral.
        let list = try JSONSerialization.jsonObject(with: Data(try vslice(["status", "--json"]).stdout.utf8)) as? [[String: Any]] ?? []
        let id = try #require(list.first { ($0["output"] as? String) == out }?["id"] as? String)
        let detail = try jsonObject(try vslice(["status", "--json", id]).stdout)
        let analyses = detail["analyses"] as? [[String: Any]] ?? []
        #expect(analyses.count == 6 && analyses.allSatisfy { ($0["status"] as? String) == "done" && ($0["attempts"] as? Int) == 1 }, "\(analyses)")
        let reduce = (detail["events"] as? [[String: Any]] ?? []).first { ($0["node"] as? String) == "reduce" }
        let record = try jsonObject(reduce?["detail"] as? String ?? "{}")
        let track = (record["loudness"] as? [[String: Any]])?.first
        let measured = try #require(track?["integrated"] as? Double), gain = try #require(track?["gainDB"] as? Double)
        #expect(abs(measured - source.i) <= 0.2, "the ledger's \(measured), ffmpeg's \(source.i)")
        // A linear gain: the output's short-term loudness is the source's plus the gain, at every join too.
        let a = try Self.shortTerm(out, scratch: dir), b = try Self.shortTerm(src, scratch: dir)
        let n = min(a.count, b.count)
        let worst = (30..<n).map { abs(a[$0] - b[$0] - gain) }.max() ?? 99
        #expect(n >= 110 && worst <= 0.5, "largest step \(worst) LU over \(n) values")
    }
}
