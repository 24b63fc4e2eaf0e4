import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// Decodes every packet of a file's video and audio streams and reports what does not decode cleanly: a
/// packet the decoder rejects, or a frame it flags as corrupt (damaged data concealed by the decoder).
/// Timestamps alone cannot tell a file with flipped bytes in its media data from a good one.
public enum DecodeCheck {
    /// Problems found, one line each (at most one per stream); empty when every packet decoded cleanly.
    public static func problems(path: String) throws(VSliceError) -> [String] {
        let input = try InputFile(path: path)
        var decoders: [Int: Decoder] = [:]
        for i in 0..<input.streamCount {
            let type = input.stream(i).pointee.codecpar.pointee.codec_type
            guard type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO,
                  input.stream(i).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC == 0 else { continue }
            decoders[i] = try Decoder(stream: input.stream(i), path: path,
                                      threads: type == AVMEDIA_TYPE_VIDEO ? ProcessInfo.processInfo.activeProcessorCount : 1)
            // Ask the decoder to check what it can (CRCs, bitstream conformance) instead of concealing.
            decoders[i]!.ctx.pointee.err_recognition |= AV_EF_CRCCHECK | AV_EF_BITSTREAM
        }
        for i in 0..<input.streamCount where decoders[i] == nil { input.stream(i).pointee.discard = AVDISCARD_ALL }
        var bad: [Int: String] = [:]
        let packet = Packet(), frame = Frame()

        /// FFmpeg's words alone: the place is said before them.
        func words(_ error: VSliceError) -> String { error.code.map(ffErrorString) ?? error.reason }
        func drain(_ stream: Int, _ decoder: Decoder) {
            while bad[stream] == nil {
                do throws(VSliceError) {
                    guard try decoder.receive(frame) == .ok else { return }
                } catch {
                    bad[stream] = "\(decoder.place()) does not decode: \(words(error))"
                    return
                }
                if frame.isCorrupt { bad[stream] = "\(decoder.place(frame.bestEffortTimestamp)) has damaged data (the decoder concealed errors)" }
            }
        }
        while try input.read(into: packet) {
            let s = packet.streamIndex
            guard let decoder = decoders[s], bad[s] == nil else { continue }
            do throws(VSliceError) {
                while try decoder.send(packet) == .again { drain(s, decoder) }
            } catch {
                bad[s] = "\(decoder.place()) does not decode: \(words(error))"
            }
            drain(s, decoder)
        }
        for (s, decoder) in decoders where bad[s] == nil {
            _ = try? decoder.send(nil)
            drain(s, decoder)
        }
        return bad.keys.sorted().map { bad[$0]! }
    }
}
