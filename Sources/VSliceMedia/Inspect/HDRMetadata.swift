import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

extension HDRMetadata {
    /// Reads it from `source`'s video stream; nil when there is none.
    package static func read(source: String, videoStream: Int) throws(VSliceError) -> HDRMetadata? {
        let input = try InputFile(path: source)
        input.keepOnly(videoStream)
        let st = input.stream(videoStream)
        var meta = HDRMetadata()
        var size = 0
        if let p = av_stream_get_side_data(st, AV_PKT_DATA_MASTERING_DISPLAY_METADATA, &size),
           size >= MemoryLayout<AVMasteringDisplayMetadata>.size {
            meta.mastering = Data(bytes: p, count: MemoryLayout<AVMasteringDisplayMetadata>.size)
        }
        if let p = av_stream_get_side_data(st, AV_PKT_DATA_CONTENT_LIGHT_LEVEL, &size),
           size >= MemoryLayout<AVContentLightMetadata>.size {
            meta.lightLevel = Data(bytes: p, count: MemoryLayout<AVContentLightMetadata>.size)
        }
        // Only 10-bit-or-more video with a PQ or HLG transfer carries it in its frames worth a decode.
        let par = st.pointee.codecpar.pointee
        let hdrTransfer = par.color_trc == AVCOL_TRC_SMPTE2084 || par.color_trc == AVCOL_TRC_ARIB_STD_B67
        if meta.isEmpty && hdrTransfer {
            let decoder = try Decoder(stream: st, path: source, threads: 1)
            let packet = Packet(), frame = Frame()
            var got = false
            func take() throws(VSliceError) {
                while !got, try decoder.receive(frame) == .ok {
                    got = true
                    if let sd = av_frame_get_side_data(frame.ptr, AV_FRAME_DATA_MASTERING_DISPLAY_METADATA),
                       Int(sd.pointee.size) >= MemoryLayout<AVMasteringDisplayMetadata>.size {
                        meta.mastering = Data(bytes: sd.pointee.data, count: MemoryLayout<AVMasteringDisplayMetadata>.size)
                    }
                    if let sd = av_frame_get_side_data(frame.ptr, AV_FRAME_DATA_CONTENT_LIGHT_LEVEL),
                       Int(sd.pointee.size) >= MemoryLayout<AVContentLightMetadata>.size {
                        meta.lightLevel = Data(bytes: sd.pointee.data, count: MemoryLayout<AVContentLightMetadata>.size)
                    }
                }
            }
            var packets = 0
            while !got, packets < 200, try input.read(into: packet) {
                guard packet.streamIndex == videoStream else { continue }
                packets += 1
                while try decoder.send(packet) == .again { try take() }
                try take()
            }
            if !got { _ = try decoder.send(nil); try take() }
        }
        return meta.isEmpty ? nil : meta
    }

    private var display: AVMasteringDisplayMetadata? {
        mastering.map { d in d.withUnsafeBytes { $0.loadUnaligned(as: AVMasteringDisplayMetadata.self) } }
    }
    private var light: AVContentLightMetadata? {
        lightLevel.map { d in d.withUnsafeBytes { $0.loadUnaligned(as: AVContentLightMetadata.self) } }
    }

    /// `G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)`: x265 takes chromaticities in 0.00002 units and luminance in
    /// 0.0001 cd/m² (`decimal` false), SVT-AV1 takes them as decimals (`decimal` true).
    private func masteringString(decimal: Bool) -> String? {
        guard let m = display, m.has_primaries != 0, m.has_luminance != 0 else { return nil }
        func c(_ r: AVRational) -> String {
            decimal ? String(format: "%.5f", av_q2d(r)) : String(Int((av_q2d(r) * 50000).rounded()))
        }
        func l(_ r: AVRational) -> String {
            decimal ? String(format: "%.4f", av_q2d(r)) : String(Int((av_q2d(r) * 10000).rounded()))
        }
        let p = m.display_primaries  // R, G, B
        return "G(\(c(p.1.0)),\(c(p.1.1)))B(\(c(p.2.0)),\(c(p.2.1)))R(\(c(p.0.0)),\(c(p.0.1)))"
            + "WP(\(c(m.white_point.0)),\(c(m.white_point.1)))L(\(l(m.max_luminance)),\(l(m.min_luminance)))"
    }

    /// `key=value` items for x265's `x265-params`.
    package var x265Params: [String] {
        var out: [String] = []
        if let m = masteringString(decimal: false) { out.append("master-display=\(m)") }
        if let l = light { out.append("max-cll=\(l.MaxCLL),\(l.MaxFALL)") }
        if !out.isEmpty { out.append("hdr10=1") }
        return out
    }

    /// `key=value` items for SVT-AV1's `svtav1-params`.
    package var svtParams: [String] {
        var out: [String] = []
        if let m = masteringString(decimal: true) { out.append("mastering-display=\(m)") }
        if let l = light { out.append("content-light=\(l.MaxCLL),\(l.MaxFALL)") }
        return out
    }

    /// The items for an encoder's parameter list (`VideoEncoderRules.parameterList`); none for a list that
    /// carries no HDR10 metadata.
    package func parameters(for list: String) -> [String] {
        switch list {
        case "x265-params": x265Params
        case "svtav1-params": svtParams
        default: []
        }
    }

    /// Adds it to an output stream's side data.
    package func apply(to st: UnsafeMutablePointer<AVStream>) {
        for (data, type) in [(mastering, AV_PKT_DATA_MASTERING_DISPLAY_METADATA), (lightLevel, AV_PKT_DATA_CONTENT_LIGHT_LEVEL)] {
            guard let data, let p = av_stream_new_side_data(st, type, data.count) else { continue }
            data.copyBytes(to: p, count: data.count)
        }
    }
}
