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
