// JSONValue inside Codable types keeps its JSON types (numbers stay numbers, objects stay
// objects): the server's event data and file attributes go out this way.
import Foundation
import Testing
import TailorFormats

struct JSONValueCodableTests {
    struct Holder: Codable { var data: [String: JSONValue]; var list: [JSONValue] }

    @Test func encodesWithItsTypesAndDecodesBack() throws {
        let value = Holder(data: ["step": .int(3), "loss": .double(0.25), "ok": .bool(true), "none": .null, "name": .string("a\"b"),
                                  "nested": .object([("z", .int(1)), ("a", .array([.int(2), .string("x")]))])],
                           list: [.int(-7), .double(1.5), .double(.nan)])
        let data = try JSONEncoder().encode(value)
        let raw = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let d = try #require(raw["data"] as? [String: Any])
        #expect((d["step"] as? NSNumber)?.intValue == 3 && !(d["step"] is String))
        #expect((d["loss"] as? NSNumber)?.doubleValue == 0.25)
        #expect(d["ok"] as? Bool == true && d["none"] is NSNull && d["name"] as? String == "a\"b")
        let nested = try #require(d["nested"] as? [String: Any])
        #expect((nested["a"] as? [Any])?.count == 2)
        #expect((raw["list"] as? [Any])?.last is NSNull, "NaN is written as null")
        // (Key order is JSONEncoder's: it does not keep insertion order. `serialized()` does.)
        #expect(JSONValue.object([("z", .int(1)), ("a", .int(2))]).serialized() == #"{"z":1,"a":2}"#)
        let back = try JSONDecoder().decode(Holder.self, from: data)
        #expect(back.data["step"] == .int(3) && back.data["loss"] == .double(0.25) && back.data["name"] == .string("a\"b"))
    }
}
