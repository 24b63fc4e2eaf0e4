import Foundation
import TestScratch
import Testing

/// What an output must be beyond its timing, where the options make it other than the source's. The default is a
/// default transcode: H.264 of the source's size and pixel format, its pictures within `minFramePSNR` of the
/// source's frame by frame, every audio track encoded to AAC with the source track's channels, rate and layout.
struct Expected {
    /// What the output's frames are compared with, frame by frame in order: the source, or another file (an
    /// ffmpeg pass of the same filter or processor) where the options change the pictures.
    enum Picture { case source, reference(String) }
    /// Every kept audio track encoded with this codec (ffprobe's name), or copied (the source's packets: its
    /// codec, and its samples exactly).
    enum Audio { case encoded(String), copied }

    var videoCodec = "h264"
    /// "WxH" and pixel format; nil: the source's.
    var size: String?
    var pixFmt: String?
    var picture = Picture.source
    var audio = Audio.encoded("aac")
    /// The source audio track each output track is (`--audio`); nil: every source track, in order.
    var audioTracks: [Int]?
    /// An audio filter for the decode of the source the output's samples are compared with (a hole in the
    /// source's timestamps: `aresample=async=1`, the silence vslice fills in, as ffmpeg's pass does).
    var audioSourceFilter: String?
    /// Every frame's PSNR at least this. Measured on the outputs of the tests (their sources, presets, CRF 18
    /// to 30): lowest frames 33.9 dB (160x90 ultrafast at CRF 30), 34.6 dB (x265 at its default CRF 28), 35.7 dB
    /// (160x90 `slow` at the default CRF), 38 to 40 dB for the fixtures at the default CRF.
    var minFramePSNR = 30.0
    /// No frame under 50 dB more than this below its neighbours (`PSNRStats.worstDip`: a damaged or misplaced
    /// frame among good ones). Measured: at most 3.5 dB (static pictures above 50 dB dip up to 6.2 dB at a
    /// segment's start, not counted).
    var maxPSNRDip = 8.0
    /// An encoded track's SNR against its source track at zero lag. Measured: 31 to 70 dB for the fixtures and
    /// the tests' tones at the default bit rate, 13.2 dB for the audio-piece tests' 5.1 tones and noise at the
    /// default 128 kb/s; shifted by 1024 samples the same tracks give −2 to −6 dB.
    var minAudioSNR = 10.0

    /// Samples at the start of output track k's decode that are an encoder's priming nothing trims: for an
    /// encoded AAC track, in Matroska (which does not signal it), or in MP4/MOV when the track starts after the
    /// file (its edit list cannot skip it) — 1024 — the source's own untrimmed priming being part of the sound
    /// vslice and ffmpeg decode; for a copied one, the 1024 its source's MP4 trimmed and Matroska cannot.
    func primingSamples(_ s: MediaFacts, _ o: MediaFacts, output k: Int) -> Int {
        guard k < o.audio.count, o.audio[k].codec == "aac" else { return 0 }
        let matroska = o.format.hasPrefix("matroska")
        if case .copied = audio { return matroska && !s.format.hasPrefix("matroska") ? 1024 : 0 }
        return matroska || o.audio[k].start > o.formatStart + 1e-6 ? 1024 : 0
    }
}

/// What is wrong with the output's content: its container, its stream parameters, its pictures, its sound.
func contentProblems(source: String, output: String, facts: (s: MediaFacts, o: MediaFacts), expect: Expected) throws -> [String] {
    try containerProblems(output, facts.o)
        + videoParameterProblems(source: source, output: output, expect: expect)
        + pictureProblems(source: source, output: output, frames: facts.o.frames, expect: expect)
        + audioContentProblems(source: source, output: output, facts: facts, expect: expect)
}

/// The container the output's extension names: ffprobe's format name, and the MP4/MOV brand or the Matroska
/// DocType.
func containerProblems(_ output: String, _ o: MediaFacts) throws -> [String] {
    let ext = (output as NSString).pathExtension.lowercased()
    let brand = try FFprobe.format(output)["tags"].flatMap { ($0 as? [String: Any])?["major_brand"] as? String }
    let head = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: output)).read(upToCount: 64) ?? Data(), as: UTF8.self)
    let ok: Bool
    switch ext {
    case "mp4": ok = o.format.contains("mp4") && brand == "isom"
    case "mov": ok = o.format.contains("mov") && brand == "qt  "
    case "mkv": ok = o.format == "matroska,webm" && head.contains("matroska")
    default: return ["no container rule for .\(ext)"]
    }
    return ok ? [] : [".\(ext) output is \(o.format), brand \(brand ?? "none")"]
}

/// A video stream's parameters as compared: unset range read as limited ("tv", as decoders do), unset SAR
/// as square.
struct VideoParameters: Equatable {
    var fields: [String: String]

    init(_ path: String) throws {
        let v = try #require(try FFprobe.json(["-select_streams", "v:0", "-show_streams", path])["streams"] as? [[String: Any]]).first ?? [:]
        func text(_ key: String) -> String { (v[key] as? String) ?? "unknown" }
        let sar = text("sample_aspect_ratio")
        let rotation = (v["side_data_list"] as? [[String: Any]] ?? []).compactMap { $0["rotation"] as? Int }.first ?? 0
        fields = ["codec": text("codec_name"), "pix_fmt": text("pix_fmt"), "size": "\(v["width"] ?? 0)x\(v["height"] ?? 0)",
                  "color_range": text("color_range") == "unknown" ? "tv" : text("color_range"),
                  "color_space": text("color_space"), "color_transfer": text("color_transfer"),
                  "color_primaries": text("color_primaries"),
                  "sar": ["unknown", "N/A", "0:1"].contains(sar) ? "1:1" : sar, "rotation": "\(rotation)"]
    }
}

/// Codec, pixel format, size, colour tags, SAR and rotation: the source's, or as the options ask.
func videoParameterProblems(source: String, output: String, expect: Expected) throws -> [String] {
    var want = try VideoParameters(source).fields
    let got = try VideoParameters(output).fields
    want["codec"] = expect.videoCodec
    if let size = expect.size { want["size"] = size }
    if let pix = expect.pixFmt { want["pix_fmt"] = pix }
    return want.keys.sorted().compactMap { k in got[k] == want[k] ? nil : "video \(k) \(got[k] ?? "none"), expected \(want[k] ?? "none")" }
}

/// Every frame's PSNR against the source (or the reference): as many frames, none below the floor, none far
/// below its neighbours.
func pictureProblems(source: String, output: String, frames: Int, expect: Expected) throws -> [String] {
    let reference: String
    switch expect.picture {
    case .source:
        if let size = expect.size, try VideoParameters(source).fields["size"] != size {
            return ["a picture of another size than the source's needs a reference to be judged"]
        }
        reference = source
    case .reference(let path): reference = path
    }
    let p = try FFmpegOracle.framePSNR(output, reference)
    var problems: [String] = []
    if p.frames.count != frames { problems.append("PSNR over \(p.frames.count) frame pairs, output has \(frames)") }
    if p.min < expect.minFramePSNR { problems.append("a frame at \(p.min) dB, floor \(expect.minFramePSNR) (\(p))") }
    let dip = p.worstDip()
    if dip.dB > expect.maxPSNRDip { problems.append("frame \(dip.frame) at \(p.frames[dip.frame]) dB, \(dip.dB) dB below its neighbours (\(p))") }
    return problems
}
