# Independent check of docs/format.md: decrypts / verifies the committed vectors with Python's
# `cryptography` package only (HChaCha20 written out from the XChaCha draft), no zkwiki code.
# Run: python3 core-crypto/tests/vectors/independent_check.py (needs `pip install cryptography`).
import json, struct, hashlib
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
import os
V=os.path.dirname(os.path.abspath(__file__))+'/'
def hkdf(ikm, info, n, salt=None):
    return HKDF(hashes.SHA256(), n, salt, info).derive(ikm)
def rotl(v,c): return ((v<<c)&0xffffffff)|(v>>(32-c))
def qr(s,a,b,c,d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],7)
def hchacha(key, n16):
    s=[0x61707865,0x3320646e,0x79622d32,0x6b206574]+list(struct.unpack('<8I',key))+list(struct.unpack('<4I',n16))
    for _ in range(10):
        qr(s,0,4,8,12);qr(s,1,5,9,13);qr(s,2,6,10,14);qr(s,3,7,11,15)
        qr(s,0,5,10,15);qr(s,1,6,11,12);qr(s,2,7,8,13);qr(s,3,4,9,14)
    return struct.pack('<8I',*(s[0:4]+s[12:16]))
def xopen(key, nonce, ad, ct):
    return ChaCha20Poly1305(hchacha(key,nonce[:16])).decrypt(b'\0'*4+nonce[16:], ct, ad)
def sealed_open(key,label,ad,box):
    n,c,ct=box[:24],box[24:56],box[56:]
    okm=hkdf(key,label,64,salt=n)
    assert okm[32:]==c, 'commitment'
    return xopen(okm[:32],n,ad,ct)
def padme(L):
    if L<2: return L
    E=L.bit_length()-1; S=E.bit_length(); mask=(1<<(E-S))-1
    return (L+mask)&~mask
env=json.load(open(V+'envelope.json'))
for c in env['cases']:
    b=bytes.fromhex(c['envelope']); assert b[:5]==b'ZKPG\x01'
    e=struct.unpack('>I',b[5:9])[0]; sid=b[9:25]
    E=bytes.fromhex(c['epoch_secret'])
    ss=hkdf(E,b'zkwiki/v1/scope/'+c['prefix'].encode(),32)
    assert hkdf(ss,b'zkwiki/v1/scope-id',16)==sid
    ad=b[:25]+bytes.fromhex(c['wiki'])+bytes.fromhex(c['page'])
    p=sealed_open(ss,b'zkwiki/v1/seal/page',ad,b[25:])
    assert p[0] in (1,2) and p[0]==c['record_version']; kind=p[1]; o=2
    pl=struct.unpack('>H',p[o:o+2])[0]; path=p[o+2:o+2+pl].decode(); o+=2+pl
    al=p[o]; author=p[o+1:o+1+al].decode(); o+=1+al
    ts=struct.unpack('>q',p[o:o+8])[0]; o+=8
    tz,email,msg=None,'',''
    if p[0]==2:
        has_tz=p[o]; z=struct.unpack('>h',p[o+1:o+3])[0]; o+=3
        assert has_tz in (0,1) and (has_tz==1 or z==0) and abs(z)<24*60
        tz=z if has_tz else None
        el=p[o]; email=p[o+1:o+1+el].decode(); o+=1+el
        ml=struct.unpack('>H',p[o:o+2])[0]; msg=p[o+2:o+2+ml].decode(); o+=2+ml
    cl=struct.unpack('>I',p[o:o+4])[0]; content=p[o+4:o+4+cl]; o+=4+cl
    assert o==c['record_len'] and len(p)==padme(o) and all(x==0 for x in p[o:])
    assert (path,author,ts,content.hex())==(c['path'],c['author'],c['written_at_ms'],c['content']), c['comment']
    assert (msg,email,tz)==(c['message'],c['author_email'],c['tz_offset_minutes']), c['comment']
print('envelopes ok', len(env['cases']))
st=json.load(open(V+'state.json'))
for c in st['cases']:
    b=bytes.fromhex(c['bytes']); assert len(b)==225
    Ed25519PublicKey.from_public_bytes(b[129:161]).verify(b[161:], b'zkwiki/v1/sign/state'+b[:161])
    assert hashlib.sha256(b).hexdigest()==c['hash']
print('states ok')
kr=json.load(open(V+'keyring.json'))
for v in kr['versions']:
    b=bytes.fromhex(v['bytes'])
    Ed25519PublicKey.from_public_bytes(b[-96:-64]).verify(b[-64:], b'zkwiki/v1/sign/keyring'+b[:-64])
    wiki=b[5:21]; nonce=b[21:37]
    assert hashlib.sha256(b'zkwiki/v1/wiki-id'+bytes.fromhex(kr['versions'][0]['signer'])+nonce).digest()[:16]==wiki
    epoch=struct.unpack('>I',b[77:81])[0]; cnt=struct.unpack('>H',b[81:83])[0]; o=83
    for _ in range(cnt):
        nl=b[o]; o+=1+nl+82; wl=struct.unpack('>I',b[o:o+4])[0]; o+=4+wl
    sl=struct.unpack('>I',b[o:o+4])[0]; scopes=b[o+4:o+4+sl]; o+=4+sl
    E=bytes.fromhex(kr['epoch_secrets'][epoch-1])
    sp=sealed_open(E,b'zkwiki/v1/seal/scopes',b'ZKKR\x01'+wiki+struct.pack('>I',epoch)+b'scopes',scopes)
    lc=struct.unpack('>I',b[o:o+4])[0]; o+=4
    for _ in range(lc):
        e=struct.unpack('>I',b[o:o+4])[0]; ll=struct.unpack('>H',b[o+4:o+6])[0]; box=b[o+6:o+6+ll]; o+=6+ll
        prev=sealed_open(bytes.fromhex(kr['epoch_secrets'][e-1]),b'zkwiki/v1/seal/epoch-link',b'ZKKR\x01'+wiki+struct.pack('>I',e)+b'link',box)
        assert prev.hex()==kr['epoch_secrets'][e-2]
    assert o==len(b)-96
    print('keyring', v['seq'], 'epoch', epoch, 'scopes', sp.hex())
m=json.load(open(V+'manifest.json'))
assert hashlib.sha256(bytes.fromhex(m['encoded'])).hexdigest()==m['digest']
print('manifest ok')
wk=json.load(open(V+'wrapped_key.json'))
def parse_zkkm(b):
    if b[:4]!=b'ZKKM': return 'Malformed'
    if len(b)<5: return 'Malformed'
    if b[4]!=1: return 'UnsupportedVersion'
    if len(b)<7: return 'Malformed'
    n=struct.unpack('>H',b[5:7])[0]; arn=b[7:7+n]
    if len(arn)!=n or n==0 or not all(0x21<=x<=0x7e for x in arn): return 'Malformed'
    o=7+n
    if len(b)<o+4: return 'Malformed'
    cl=struct.unpack('>I',b[o:o+4])[0]; ct=b[o+4:]
    if cl==0 or cl>6144 or len(ct)!=cl: return 'Malformed'
    return (arn.decode(), ct.hex())
for c in wk['cases']:
    assert parse_zkkm(bytes.fromhex(c['encoded']))==(c['key_arn'],c['ciphertext']), c['comment']
for r in wk['rejects']:
    assert parse_zkkm(bytes.fromhex(r['encoded']))==r['error'], r['comment']
print('wrapped keys ok', len(wk['cases']), 'rejects', len(wk['rejects']))
ids=json.load(open(V+'identity.json'))
for c in ids['identities']:
    u=c['registration_user'].encode()
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(c['ed25519_public'])).verify(
        bytes.fromhex(c['registration_proof']),
        b'zkwiki/v1/sign/register'+bytes([len(u)])+u+bytes.fromhex(c['x25519_public'])+bytes.fromhex(c['ed25519_public']))
print('registration proofs ok', len(ids['identities']))
sc=json.load(open(V+'scope.json'))
for c in sc['cases']:
    ss=hkdf(bytes.fromhex(c['epoch_secret']),b'zkwiki/v1/scope/'+c['prefix'].encode(),32)
    assert ss.hex()==c['scope_secret']
    assert hkdf(ss,b'zkwiki/v1/scope-id',16).hex()==c['scope_id']
    assert hkdf(ss,b'zkwiki/v1/index-page-id',16).hex()==c['index_page_id']
    assert hkdf(ss,b'zkwiki/v1/settings-page-id',16).hex()==c['settings_page_id']
print('scopes ok', len(sc['cases']))
# Witnesses (witness.json): the version 2 keyring and its witness set, checkpoints,
# co-signatures, witness fingerprints and safety numbers.
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
wf=json.load(open(V+'witness.json'))
b=bytes.fromhex(wf['keyring']['bytes']); assert b[:5]==b'ZKKR\x02'
Ed25519PublicKey.from_public_bytes(b[-96:-64]).verify(b[-64:], b'zkwiki/v1/sign/keyring'+b[:-64])
assert b[45:77]==hashlib.sha256(bytes.fromhex(kr['versions'][-1]['bytes'])).digest()
epoch=struct.unpack('>I',b[77:81])[0]; cnt=struct.unpack('>H',b[81:83])[0]; o=83
for _ in range(cnt):
    nl=b[o]; o+=1+nl+82; wl=struct.unpack('>I',b[o:o+4])[0]; o+=4+wl
sl=struct.unpack('>I',b[o:o+4])[0]; o+=4+sl
lc=struct.unpack('>I',b[o:o+4])[0]; o+=4
for _ in range(lc):
    ll=struct.unpack('>H',b[o+4:o+6])[0]; o+=6+ll
policy={1:'warn',2:'stop'}[b[o]]; wc=b[o+1]; o+=2; ws=[]
for _ in range(wc):
    key=b[o:o+32]; ul=struct.unpack('>H',b[o+32:o+34])[0]; url=b[o+34:o+34+ul].decode(); o+=34+ul
    fp=hashlib.sha256(b'zkwiki/v1/witness-fingerprint'+key).hexdigest()[:32]
    ws.append({'key':key.hex(),'url':url,'fingerprint':' '.join(fp[i:i+4] for i in range(0,32,4))})
assert o==len(b)-96 and policy==wf['keyring']['policy'] and ws==wf['keyring']['witnesses']
print('witness keyring ok: version 2, epoch', epoch, 'witnesses', len(ws), 'policy', policy)
pubs=[]
for k in wf['witness_keys']:
    pub=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k['seed'])).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert pub.hex()==k['public']; pubs.append(pub)
cps=[]
for c in wf['checkpoints']:
    e=bytes.fromhex(c['encoded']); assert len(e)==69 and e[:5]==b'ZKCP\x01'
    assert (e[5:21].hex(), struct.unpack('>Q',e[21:29])[0], e[29:61].hex(), struct.unpack('>Q',e[61:69])[0])==(c['wiki'],c['seq'],c['state'],c['keyring_seq'])
    cps.append(e)
for c in wf['cosignatures']:
    s=bytes.fromhex(c['bytes']); assert len(s)==210 and s[:5]==b'ZKCS\x01'
    assert s[5:74]==cps[c['checkpoint']] and s[74:106].hex()==c['nonce'] and struct.unpack('>Q',s[106:114])[0]==c['time_ms']
    assert s[114:146]==pubs[c['witness']]
    Ed25519PublicKey.from_public_bytes(s[114:146]).verify(s[146:], b'zkwiki/v1/sign/cosignature'+s[:146])
print('checkpoints ok', len(cps), 'co-signatures ok', len(wf['cosignatures']))
for c in wf['safety_numbers']:
    d=hashlib.sha256(('zkwiki/v1/safety/'+c['kind']).encode()+bytes.fromhex(c['wiki'])+bytes.fromhex(c['hash'])).digest()
    assert ' '.join('%05d'%(int.from_bytes(d[5*i:5*i+5],'big')%100000) for i in range(4))==c['number'], c['comment']
print('safety numbers ok', len(wf['safety_numbers']))
