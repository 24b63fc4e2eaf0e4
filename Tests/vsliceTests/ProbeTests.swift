import Foundation
import Testing

@Suite("vslice probe against ffprobe")
struct ProbeTests {
    @Test("probe --json agrees with ffprobe", arguments: goodFixtures)
    func agreesWithFFprobe(_ name: String) throws {
        let path = Paths.fixture(name)
        let run = try vslice(["probe", "--json", path])
        #expect(run.status == 0, "\(run.stderr)")
        let mine = try jsonObject(run.stdout)
        let format = try FFprobe.format(path)

        // Duration within 1 ms.
        let myDuration = try #require(mine["duration"] as? Double)
        let theirDuration = try #require(Double(format["duration"] as? String ?? ""))
        #expect(abs(myDuration - theirDuration) <= 0.001)
        #expect(mine["format_name"] as? String == format["format_name"] as? String)
        #expect(mine["filename"] as? String == format["filename"] as? String)
        #expect(mine["tags"] as? [String: String] == format["tags"] as? [String: String])

        // Exact frame count: ffprobe's packet count of the video stream.
        let v = try #require(try FFprobe.stream(path, "v"))
        #expect(mine["frame_count"] as? Int == Int(v["nb_read_packets"] as? String ?? ""))

        // Keyframe positions: the same set of presentation timestamps.
        let packets = try FFprobe.packets(path, "v")
        let myKeys = (mine["keyframes"] as? [[String: Any]] ?? []).compactMap { ($0["pts"] as? NSNumber)?.int64Value }
        #expect(myKeys == packets.keyPts.sorted())
        // Keyframe index = position in presentation order.
        let order = packets.pts.sorted()
        for k in mine["keyframes"] as? [[String: Any]] ?? [] {
            let idx = try #require(k["index"] as? Int)
            #expect(order[idx] == (k["pts"] as? NSNumber)?.int64Value)
        }

        // Stream properties.
        let theirs = try FFprobe.streams(path)
        let ours = try #require(mine["streams"] as? [[String: Any]])
        #expect(ours.count == theirs.count)
        for (o, t) in zip(ours, theirs) {
            #expect(o["codec_name"] as? String == t["codec_name"] as? String)
            #expect(o["codec_type"] as? String == t["codec_type"] as? String)
            #expect(o["disposition"] as? [String: Int] == t["disposition"] as? [String: Int])
            #expect(o["tags"] as? [String: String] == t["tags"] as? [String: String])
            #expect(o["language"] as? String == (t["tags"] as? [String: String])?["language"])
            #expect(o["time_base"] as? String == t["time_base"] as? String)
            if let p = t["profile"] as? String { #expect(o["profile"] as? String == p) }
            if t["codec_type"] as? String == "video" {
                #expect(o["width"] as? Int == t["width"] as? Int)
                #expect(o["height"] as? Int == t["height"] as? Int)
                #expect(o["pix_fmt"] as? String == t["pix_fmt"] as? String)
                #expect(o["avg_frame_rate"] as? String == t["avg_frame_rate"] as? String)
                #expect(o["r_frame_rate"] as? String == t["r_frame_rate"] as? String)
                for (mineKey, theirKey) in [("color_primaries", "color_primaries"), ("color_transfer", "color_transfer"),
                                            ("color_space", "color_space"), ("color_range", "color_range")] {
                    // Both leave an unspecified value out (never "unknown").
                    #expect(o[mineKey] as? String == t[theirKey] as? String, "\(mineKey)")
                    #expect(o[mineKey] as? String != "unknown")
                }
            } else if t["codec_type"] as? String == "audio" {
                #expect(o["sample_rate"] as? Int == Int(t["sample_rate"] as? String ?? ""))
                #expect(o["channels"] as? Int == t["channels"] as? Int)
                #expect(o["channel_layout"] as? String == t["channel_layout"] as? String)
                #expect(o["sample_fmt"] as? String == t["sample_fmt"] as? String)
            }
            if let st = Double(t["start_time"] as? String ?? "") {
                #expect(abs((o["start_time"] as? Double ?? -1) - st) <= 0.001)
            }
        }
    }

    @Test("VFR fixture is reported variable, constant-rate fixtures are not")
    func frameRateMode() throws {
        let vfr = try jsonObject(try vslice(["probe", "--json", Paths.fixture("vfr.mp4")]).stdout)
        #expect(vfr["variable_frame_rate"] as? Bool == true)
        let cfr = try jsonObject(try vslice(["probe", "--json", Paths.fixture("h264_aac.mp4")]).stdout)
        #expect(cfr["variable_frame_rate"] as? Bool == false)
        let open = try jsonObject(try vslice(["probe", "--json", Paths.fixture("bframes_open_gop.mp4")]).stdout)
        #expect(open["open_gop"] as? Bool == true)
        #expect(cfr["open_gop"] as? Bool == false)
    }

    @Test("bad input: exit 3, one line naming the file", arguments: badFixtures + ["does-not-exist.mp4"])
    func badInput(_ name: String) throws {
        let path = Paths.fixture(name)
        let run = try vslice(["probe", path], timeout: 60)
        #expect(run.status == 3)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(run.stderr)")
        #expect(run.stderr.contains(path))
        #expect(run.stdout.isEmpty)
    }

    @Test("a usage error exits 2")
    func usageError() throws {
        #expect(try vslice(["probe"]).status == 2)
        #expect(try vslice(["no-such-command"]).status == 2)
    }
}
