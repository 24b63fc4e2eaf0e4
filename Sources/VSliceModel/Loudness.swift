import Foundation
import VSliceSupport

/// `--loudness I=-16:TP=-1.5:LRA=11`: the integrated loudness (LUFS) the audio is brought to, and the true peak
/// (dBTP) it stays under, by one linear gain per track (EBU R128 / ITU-R BS.1770). LRA is kept for the record:
/// a linear gain leaves the loudness range as it is.
public struct LoudnessTarget: Codable, Sendable, Equatable {
    public var integrated: Double
    public var truePeak: Double
    public var range: Double?

    public init(integrated: Double, truePeak: Double = -1, range: Double? = nil) {
        self.integrated = integrated
        self.truePeak = truePeak
        self.range = range
    }

    /// `I=-16:TP=-1.5:LRA=11` (I required; TP −1 when not given), as ffmpeg's `loudnorm` spells it.
    public static func parse(_ text: String) throws(VSliceError) -> LoudnessTarget {
        func refuse(_ why: String) -> VSliceError {
            VSliceError(.usage, "check options", reason: "--loudness takes I=LUFS[:TP=dBTP][:LRA=LU] like I=-16:TP=-1.5 (\(why)), got '\(text)'")
        }
        var values: [String: Double] = [:]
        for part in text.split(separator: ":") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let v = Double(kv[1]), v.isFinite else { throw refuse("key=number") }
            let key = kv[0].uppercased()
            guard ["I", "TP", "LRA"].contains(key) else { throw refuse("keys I, TP, LRA") }
            values[key] = v
        }
        guard let i = values["I"] else { throw refuse("I is needed") }
        guard (-70.0 ... -5.0).contains(i) else { throw refuse("I from -70 to -5") }
        let tp = values["TP"] ?? -1
        guard (-9.0 ... 0.0).contains(tp) else { throw refuse("TP from -9 to 0") }
        if let lra = values["LRA"], !(1.0 ... 50.0).contains(lra) { throw refuse("LRA from 1 to 50") }
        return LoudnessTarget(integrated: i, truePeak: tp, range: values["LRA"])
    }

    package var signature: String { "loudness=I\(integrated):TP\(truePeak):LRA\(range.map { String($0) } ?? "-")" }
}

/// One audio piece's measurement (its artifact, JSON): the energy of every 400 ms block (100 ms apart, on the
/// track's own grid) that ends inside the piece, and the piece's largest true peak (linear).
public struct LoudnessMeasure: Codable, Sendable, Equatable {
    public var track: Int
    public var piece: Int
    /// Mean square of the K-weighted samples, channel-weighted: loudness = −0.691 + 10·log10(energy).
    public var blocks: [Double]
    public var truePeak: Double

    public init(track: Int, piece: Int, blocks: [Double], truePeak: Double) {
        self.track = track
        self.piece = piece
        self.blocks = blocks
        self.truePeak = truePeak
    }

    public static func energy(loudness: Double) -> Double { pow(10, (loudness + 0.691) / 10) }
    public static func loudness(energy: Double) -> Double { -0.691 + 10 * log10(energy) }
}

/// A track's loudness over all its pieces, and the gain that brings it to the target.
public struct LoudnessResult: Codable, Sendable, Equatable {
    public var track: Int
    /// Gated integrated loudness (LUFS), nil when no block passes the absolute gate (silence).
    public var integrated: Double?
    /// Largest true peak (dBTP).
    public var truePeak: Double
    /// The gain applied (dB): the target's I minus the measured, lowered so the true peak stays under TP.
    public var gainDB: Double
    public var blocks: Int

    public var linearGain: Double { pow(10, gainDB / 20) }

    /// BS.1770's gated integral over every piece's blocks of each track (absolute gate −70 LUFS, relative gate
    /// 10 LU below the loudness of the blocks above it), the track's true peak, and the gain.
    public static func reduce(_ measures: [LoudnessMeasure], target: LoudnessTarget) -> [LoudnessResult] {
        let byTrack = Dictionary(grouping: measures, by: \.track)
        return byTrack.keys.sorted().map { track in
            let pieces = byTrack[track]!.sorted { $0.piece < $1.piece }
            let blocks = pieces.flatMap(\.blocks)
            let peak = pieces.map(\.truePeak).max() ?? 0
            let peakDB = peak > 0 ? 20 * log10(peak) : -120
            let integrated = gated(blocks)
            var gain = integrated.map { target.integrated - $0 } ?? 0
            gain = min(gain, target.truePeak - peakDB)
            return LoudnessResult(track: track, integrated: integrated, truePeak: peakDB, gainDB: gain, blocks: blocks.count)
        }
    }

    static func gated(_ blocks: [Double]) -> Double? {
        let absolute = blocks.filter { LoudnessMeasure.loudness(energy: $0) > -70 }
        guard !absolute.isEmpty else { return nil }
        let relative = LoudnessMeasure.loudness(energy: absolute.reduce(0, +) / Double(absolute.count)) - 10
        let kept = absolute.filter { LoudnessMeasure.loudness(energy: $0) > relative }
        guard !kept.isEmpty else { return nil }
        return LoudnessMeasure.loudness(energy: kept.reduce(0, +) / Double(kept.count))
    }
}
