import Testing
import Foundation

/// ffprobe/ffmpeg, the independent oracle. Nothing here uses vslice's own reader.
enum FFprobe {
    static func json(_ args: [String]) throws -> [String: Any] {
        let r = try Proc.run("ffprobe", ["-v", "error", "-of", "json"] + args)
        guard r.status == 0 else { throw OracleError("ffprobe \(args) failed: \(r.stderr)") }
        return try jsonObject(r.stdout)
    }

    static func format(_ path: String) throws -> [String: Any] {
        try json(["-show_format", path])["format"] as? [String: Any] ?? [:]
    }

    static func streams(_ path: String) throws -> [[String: Any]] {
        try json(["-show_streams", path])["streams"] as? [[String: Any]] ?? []
    }

    /// First stream of a type ("v" or "a"), with packet count.
    static func stream(_ path: String, _ type: String) throws -> [String: Any]? {
        let s = try json(["-select_streams", "\(type):0", "-count_packets", "-show_streams", path])
        return (s["streams"] as? [[String: Any]])?.first
    }

    struct PacketTimes {
        var pts: [Int64]
        var dts: [Int64]
        var keyPts: [Int64]
        var timeBase: (num: Int64, den: Int64)
    }

    /// Every packet of the first stream of a type, in file order.
    static func packets(_ path: String, _ type: String = "v") throws -> PacketTimes {
        let tbText = (try stream(path, type)?["time_base"] as? String) ?? "1/1"
        let tbParts = tbText.split(separator: "/").compactMap { Int64($0) }
        let r = try Proc.run("ffprobe", ["-v", "error", "-select_streams", "\(type):0", "-show_entries",
                                         "packet=pts,dts,flags", "-of", "csv=p=0", path])
        guard r.status == 0 else { throw OracleError("ffprobe packets failed: \(r.stderr)") }
        var pts: [Int64] = [], dts: [Int64] = [], keys: [Int64] = []
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3 else { continue }
            let p = Int64(f[0]) ?? Int64(f[1]) ?? 0
            pts.append(p)
            dts.append(Int64(f[1]) ?? p)
            if f[2].hasPrefix("K") { keys.append(p) }
        }
        return PacketTimes(pts: pts, dts: dts, keyPts: keys, timeBase: (tbParts.first ?? 1, tbParts.last ?? 1))
    }
}

/// The properties an output must have against its source, measured with ffprobe/ffmpeg only.
struct MediaFacts {
    var frames: Int
    /// Video frame times, seconds, presentation order.
    var videoTimes: [Double]
    var videoTick: Double
    var dtsStrictlyIncreasing: Bool
    var videoStart: Double
    var videoEnd: Double
    var audioStart: Double?
    var audioEnd: Double?
    var format: String

    init(_ path: String) throws {
        let fmt = try FFprobe.format(path)
        format = fmt["format_name"] as? String ?? ""
        let v = try #require(try FFprobe.json(["-select_streams", "v:0", "-count_frames", "-show_streams", path])["streams"] as? [[String: Any]]).first!
        frames = Int(v["nb_read_frames"] as? String ?? "") ?? -1
        let tbParts = (v["time_base"] as? String ?? "1/1").split(separator: "/").compactMap { Double($0) }
        videoTick = tbParts[0] / tbParts[1]
        let rows = try FFprobe.csv(path, "v:0", "pts,dts,duration")
        var dts: [Int64] = []
        var times: [Double] = []
        var end = -Double.infinity
        for r in rows {
            guard let p = Int64(r[0]) else { continue }
            times.append(Double(p) * videoTick)
            if let d = Int64(r[1]) { dts.append(d) }
            end = max(end, Double(p + (Int64(r[2]) ?? 0)) * videoTick)
        }
        videoTimes = times.sorted()
        dtsStrictlyIncreasing = zip(dts, dts.dropFirst()).allSatisfy { $0 < $1 }
        videoStart = videoTimes.first ?? 0
        videoEnd = end
        if let a = try FFprobe.stream(path, "a") {
            let atb = (a["time_base"] as? String ?? "1/1").split(separator: "/").compactMap { Double($0) }
            let tick = atb[0] / atb[1]
            var aEnd = -Double.infinity
            for r in try FFprobe.csv(path, "a:0", "pts,duration") {
                if let p = Int64(r[0]) { aEnd = max(aEnd, Double(p + (Int64(r[1]) ?? 0)) * tick) }
            }
            audioStart = Double(a["start_time"] as? String ?? "") ?? 0
            // Matroska does not signal AAC's 1024-sample encoder delay, so the sound of an AAC stream that
            // vslice (or ffmpeg) wrote there starts that much after the first packet.
            if format.hasPrefix("matroska"), a["codec_name"] as? String == "aac",
               let rate = Double(a["sample_rate"] as? String ?? "") {
                primingSkew = 1024 / rate
            }
            audioEnd = aEnd
        }
    }

    var primingSkew = 0.0
    var frameInterval: Double { (videoEnd - videoStart) / Double(max(frames, 1)) }
}

extension FFprobe {
    static func csv(_ path: String, _ stream: String, _ entries: String) throws -> [[String]] {
        let r = try Proc.run("ffprobe", ["-v", "error", "-select_streams", stream, "-show_entries", "packet=\(entries)",
                                         "-of", "csv=p=0", path])
        guard r.status == 0 else { throw OracleError("ffprobe failed: \(r.stderr)") }
        return r.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }
}

enum FFmpegOracle {
    /// Average PSNR (dB) of `output` against `source`, frames paired in order from each file's start (both
    /// renumbered on one clock: frame numbers in two different time bases would pair the wrong frames).
    static func psnr(_ output: String, _ source: String) throws -> Double {
        let r = try Proc.run("ffmpeg", ["-nostdin", "-hide_banner", "-i", output, "-i", source, "-lavfi",
                                        "[0:v]settb=1/1000,setpts=N[a];[1:v]settb=1/1000,setpts=N[b];[a][b]psnr", "-f", "null", "-"])
        guard let range = r.stderr.range(of: "average:") else { throw OracleError("no PSNR in: \(r.stderr.suffix(400))") }
        let tail = r.stderr[range.upperBound...].prefix { !$0.isWhitespace }
        if tail == "inf" { return .infinity }
        return try #require(Double(tail))
    }

    /// Per-frame MD5s of the decoded video (ffmpeg -f framemd5), hashes only.
    static func frameMD5s(_ path: String, extra: [String] = []) throws -> [String] {
        let r = try Proc.run("ffmpeg", ["-nostdin", "-v", "error", "-i", path, "-map", "0:v:0"] + extra + ["-f", "framemd5", "-"])
        guard r.status == 0 else { throw OracleError("framemd5 failed: \(r.stderr)") }
        return r.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } }
    }
}

/// Every property the issue's acceptance names, as a list of what is wrong (empty when all hold).
func oracleProblems(source: String, output: String) throws -> [String] {
    let s = try MediaFacts(source), o = try MediaFacts(output)
    var problems: [String] = []
    if s.frames != o.frames { problems.append("frames \(o.frames) != source \(s.frames)") }
    // Frame times re-based to each file's first frame, within one tick of the coarser clock.
    let tol = max(s.videoTick, o.videoTick) + 1e-6
    for (i, (a, b)) in zip(s.videoTimes, o.videoTimes).enumerated() where abs((a - s.videoStart) - (b - o.videoStart)) > tol {
        problems.append("frame \(i) at \(b - o.videoStart), source \(a - s.videoStart)")
        break
    }
    if !o.dtsStrictlyIncreasing { problems.append("DTS not strictly increasing") }
    let frame = s.frameInterval
    if abs((s.videoEnd - s.videoStart) - (o.videoEnd - o.videoStart)) > frame + 1e-6 {
        problems.append("video duration \(o.videoEnd - o.videoStart) vs \(s.videoEnd - s.videoStart)")
    }
    switch (s.audioStart, o.audioStart) {
    case (nil, nil): break
    case (nil, _): problems.append("output has audio, source none")
    case (_, nil): problems.append("output has no audio")
    case let (sa?, oa?):
        let sDur = s.audioEnd! - sa, oDur = o.audioEnd! - (oa + o.primingSkew)
        if abs(sDur - oDur) > frame + 1e-6 { problems.append("audio duration \(oDur) vs \(sDur)") }
        let sOff = (sa + s.primingSkew) - s.videoStart, oOff = (oa + o.primingSkew) - o.videoStart
        // The source's own MKV priming, if any, is part of the samples vslice decoded.
        let sourceSkew = s.primingSkew
        if abs((sOff - sourceSkew) - oOff) > 0.001 + tol {
            problems.append("A/V offset \(oOff) vs source \(sOff - sourceSkew)")
        }
    }
    return problems
}
